// Package media holds what hotline adds to diago's media layer: workarounds for the defects found in diago
// v0.42.1 / sipgo v1.7.3 (B1 DTMF detection, B2 DTMF send timestamps, B3 SIP INFO digits, B4 ring timeouts;
// the table with versions is in telephony/sipua's package documentation), the embedded default prompts, the
// pacer that plays them to many calls at once, and call recorders that write WAV files.
//
// Readers and writers run in the goroutines of the call that owns them; the only goroutines started here are the
// Pacer's loops, which end when they serve no call.
package media
