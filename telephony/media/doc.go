// Package media holds what hotline adds to diago's media layer: workarounds for the defects found in diago
// v0.42.1 / sipgo v1.7.3 (B1 DTMF detection, B2 DTMF send timestamps, B3 SIP INFO digits, B4 ring timeouts;
// the table with versions is in telephony/sipua's package documentation), the embedded default prompts, the
// pacer that plays them to many calls at once, and call recorders that write WAV files.
//
// Readers and writers run in the goroutines of the call that owns them; the only goroutines and threads started
// here are the Pacer's: its C sending thread and the goroutine that hears from it (cpacer_linux.go), and its Go
// loops for what that thread cannot send; all end when they serve no call.
package media
