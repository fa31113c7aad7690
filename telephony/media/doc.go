// Package media holds what hotline adds to diago's media layer: workarounds for the defects found in diago
// v0.42.1 / sipgo v1.7.3 (see the numbered notes: B1 DTMF detection, B2 DTMF send timestamps, B3 SIP INFO
// digits, B4 ring timeouts), the embedded default prompts, and call recorders that write WAV files.
//
// Nothing here starts goroutines; readers and writers run in the goroutines of the call that owns them.
package media
