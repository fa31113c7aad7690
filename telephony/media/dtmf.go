package media

import (
	"bufio"
	"io"
	"strings"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
)

// Digits that RFC 4733 events and SIP INFO may carry.
const validDigits = "0123456789*#ABCD"

// TelephoneEventPT returns the negotiated receive payload type of telephone-event/8000.
func TelephoneEventPT(med *diago.DialogMedia) (uint8, bool) {
	ms := med.MediaSession()
	if ms == nil {
		return 0, false
	}
	for _, c := range ms.CommonCodecs() {
		if strings.EqualFold(c.Name, "telephone-event") && c.SampleRate == 8000 {
			return c.PayloadTypeRecv(), true
		}
	}
	return 0, false
}

// DTMFDetector watches RTP payloads for RFC 4733 telephone-events (B1). diago's RTPDtmfReader keeps the marker
// packet as "start" and ignores the end packet when the start had Duration 0, which SIPp's reference pcaps and
// some gateways send, so their digits were lost. This detector keys an event on its RTP timestamp, marker and
// event code (diago's own writer reuses one timestamp for back-to-back digits, B2) and fires once, on the first
// end-of-event packet; the redundant end packets are ignored.
type DTMFDetector struct {
	PT      uint8 // negotiated telephone-event payload type
	OnDigit func(rune)

	have    bool
	lastTS  uint32
	lastEv  uint8
	emitted bool
}

// Observe looks at one RTP packet (header fields and payload) and reports whether it was a telephone-event
// packet (so callers can keep it out of recordings, B8).
func (d *DTMFDetector) Observe(pt uint8, ts uint32, marker bool, payload []byte) bool {
	if pt != d.PT {
		return false
	}
	if len(payload) < 4 {
		return true
	}
	ev := dmedia.DTMFEvent{}
	if err := dmedia.DTMFDecode(payload, &ev); err != nil {
		return true
	}
	if !d.have || ts != d.lastTS || marker || ev.Event != d.lastEv {
		d.have, d.lastTS, d.lastEv, d.emitted = true, ts, ev.Event, false
	}
	if ev.EndOfEvent && !d.emitted {
		d.emitted = true
		if r := dmedia.DTMFToRune(ev.Event); strings.ContainsRune(validDigits, r) && d.OnDigit != nil {
			d.OnDigit(r)
		}
	}
	return true
}

// ParseINFODigit reads the digit of a SIP INFO body (B3): application/dtmf-relay ("Signal=5\r\nDuration=160")
// or application/dtmf ("5"). ok is false for anything else.
func ParseINFODigit(contentType string, body []byte) (digit rune, ok bool) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch ct {
	case "application/dtmf-relay":
		sc := bufio.NewScanner(strings.NewReader(string(body)))
		for sc.Scan() {
			k, v, found := strings.Cut(sc.Text(), "=")
			if found && strings.EqualFold(strings.TrimSpace(k), "Signal") {
				v = strings.ToUpper(strings.TrimSpace(v))
				if len(v) == 1 {
					digit = rune(v[0])
				}
			}
		}
	case "application/dtmf":
		if v := strings.ToUpper(strings.TrimSpace(string(body))); len(v) == 1 {
			digit = rune(v[0])
		}
	default:
		return 0, false
	}
	if digit == 0 || !strings.ContainsRune(validDigits, digit) {
		return 0, false
	}
	return digit, true
}

// SendDigits sends RFC 4733 digits on a call. diago's DTMF writer reuses one RTP timestamp for consecutive digits
// when no audio is written in between (B2), so receivers keyed on the timestamp merge them; advance the
// timestamp by the time each digit took, and leave a short gap between digits.
func SendDigits(med *diago.DialogMedia, digits string, gap time.Duration) error {
	w, err := med.AudioWriterDTMF()
	if err != nil {
		return err
	}
	for _, r := range digits {
		t := time.Now()
		if err := w.WriteDTMF(r); err != nil {
			return err
		}
		time.Sleep(gap)
		med.RTPPacketWriter.DelayTimestamp(uint32(time.Since(t).Seconds() * 8000))
	}
	return nil
}

// ReadPackets reads a call's RTP payloads until the reader ends, passing each to fn with its packet header
// fields (from the packet reader, valid right after Read).
func ReadPackets(med *diago.DialogMedia, r io.Reader, fn func(pt uint8, ts uint32, marker bool, payload []byte)) error {
	buf := make([]byte, dmedia.RTPBufSize)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return err
		}
		h := med.RTPPacketReader.PacketHeader
		fn(h.PayloadType, h.Timestamp, h.Marker, buf[:n])
	}
}
