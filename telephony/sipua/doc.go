// Package sipua is hotline's SIP user agent: one sipgo UserAgent and one diago instance per process, listening on
// UDP and TCP (TLS where a certificate is configured). It owns everything that happens before a call reaches
// intake — the trunk check (source networks, optional digest), per-source INVITE rate limits, the maximum of
// concurrent calls, admission from measured pressure (overload.go; over UDP at the door below sipgo, door.go), draining on shutdown, malformed-request
// refusal (validate.go, checked against an RFC 4475/5118 corpus in testdata/torture) — plus the registrar for agents' phones, SIP
// INFO keypad digits (B3) and ringing agents' contacts in parallel (B4 ring timeouts). Status and Response are
// the one place mapping refusals to SIP responses.
//
// Run(ctx, handler) serves until ctx ends; then new INVITEs get 503 while the calls up finish, for at most the
// drain timeout, after which the calls still up are told to hang up (their context ends) and the listeners
// close. Each call runs in the goroutine sipgo gives its INVITE (the handler is the call); Server starts no
// other long-lived goroutines than the listeners and the admission loop, which stop with Run.
//
// # Library defects worked around
//
// The labels B1–B11 in comments across telephony/ name defects of the SIP libraries that hotline works around in
// its own files (diago is MPL-2.0: no modified copies of its files). Each was seen in the version given; when an
// upgrade fixes one, drop the workaround the label points to and re-run telephony's tests.
//
//	#    library  seen in   defect                                                      workaround (where)
//	B1   diago    v0.42.1   RTPDtmfReader drops every RFC 4733 digit whose first        media.DTMFDetector
//	                        packet has Duration 0 (SIPp pcaps, some gateways)
//	B2   diago    v0.42.1   RTPDtmfWriter sends back-to-back digits with one RTP        media.SendDigits advances the
//	                        timestamp, so receivers merge them                          timestamp (DelayTimestamp)
//	B3   diago    v0.42.1   INFO application/dtmf-relay answered 406 (stub)             sipua.Digits, registered on
//	                                                                                    OnInfo after NewDiago
//	B4   sipgo    v1.7.3    WaitAnswer: a ring timeout sends CANCEL only after a 1xx,   media.Ring picks the cause
//	                        else waits Timer B (32 s); WaitAnswerForceCancelErr never    per call
//	                        sends CANCEL
//	B5   sipgo    v1.7.3    "listening" reported before the UDP listener is in the      settle 100–150 ms after
//	                        connection pool; an INVITE at once binds the port again     ServeBackground
//	B6   sipgo    v1.7.3    UDP sends over 1,300 bytes refused, no TCP fallback         keep SIP small; TCP trunks
//	B7   sipgo    v1.7.3    "TCP/WS ref went negative" WARN lines on hang-up            log noise only
//	B8   diago    v0.42.1   MonitorPCMReader decodes telephone-event packets into       recorders skip the event PT
//	                        recordings
//	B9   sipgo    v1.7.3    header values written verbatim (CR/LF injection); the       SafeHeaderValue before any
//	                        README's sip.ValidateRequest does not exist; parsed         header is built; validRequest
//	                        values with NUL or bare LF accepted                         and rawFilter on the way in
//	B10  sipgo    v1.7.3    its own 100 Trying after Timer_1xx (200 ms) races with the  sip.Timer_1xx raised; the
//	                        handler's 180; strict peers fail the call                   door (UDP) or the gate sends
//	                                                                                    100 at once
//	B11  sipgo    v1.7.3    lenient parsing: "tag = x" kept as key "tag " (the INVITE   normalizeParams in the gate;
//	                        then hangs unanswered in diago); an RFC 2543 INVITE without  rawFilter answers what the
//	     diago    v0.42.1   a From tag gets 400 from the transaction layer; requests     parser would drop (400/505)
//	                        it cannot parse dropped without an answer
package sipua
