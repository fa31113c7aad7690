// Package telephony owns hotline's calls: call detail records (CDRs), agents' SIP accounts and states, recordings,
// callback tasks for missed calls (漏接回拨) and the KPIs read from CDRs. It holds the state that outlives a call,
// in PostgreSQL; the machinery that carries calls lives in its subpackages:
//
//   - telephony/sipua: the SIP user agent (sipgo + diago): listeners, trunks, the registrar for agents' phones,
//     limits, draining, and the one place that maps call outcomes to SIP responses.
//   - telephony/media: workarounds for the media library (DTMF detection, SIP INFO digits, ring timeouts),
//     embedded prompts and call recorders.
//   - telephony/intake: the inbound flow: greeting, queue, ACD ringing of agents' phones, bridging, voicemail.
//   - telephony/phonetest: a SIP phone on diago for tests (registers, answers, talks, sends keypad tones).
//
// The package knows nothing of HTTP and nothing of other features' types: what it needs from ticketing and
// monitoring records it declares as small interfaces (VoicemailTickets, CallerLookup, ContactRecorder,
// TicketAccess, EventPublisher), and cmd/hotline wires the real implementations in.
//
// Concurrency: Service has no goroutines of its own except RunSweeper (after-call work → ready), which runs
// until its context ends. Every state change is one transaction, with its event written in the same transaction.
package telephony
