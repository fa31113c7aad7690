package media

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The default prompts, generated once by prompts/make_prompts.sh (espeak-ng + sox are not on every machine that
// runs hotline) and embedded, so a bare binary can answer calls.
//
//go:embed prompts/*.wav
var defaultPrompts embed.FS

// Prompt is an 8 kHz, 16-bit, mono PCM WAV file in memory: the only format diago plays over G.711 without
// resampling.
type Prompt struct {
	Name string
	WAV  []byte
}

// Duration is the playing time of the prompt.
func (p Prompt) Duration() float64 {
	if len(p.WAV) <= 44 {
		return 0
	}
	return float64(len(p.WAV)-44) / 16000
}

// Prompts are the recordings played to callers.
type Prompts struct {
	Greeting  Prompt // answered: "通话将被录音。12345乡村振兴专席。" (recording notice first; the agent is rung meanwhile)
	Queue     Prompt // when the caller has to wait
	Hold      Prompt // looped while waiting
	Voicemail Prompt // no agent in time: leave a message after the tone, end with #
	Closed    Prompt // outside service hours: leave a message
	Beep      Prompt // before recording
	Thanks    Prompt // after the message
}

var promptFiles = []struct {
	name string
	get  func(*Prompts) *Prompt
}{
	{"greeting", func(p *Prompts) *Prompt { return &p.Greeting }},
	{"queue", func(p *Prompts) *Prompt { return &p.Queue }},
	{"hold", func(p *Prompts) *Prompt { return &p.Hold }},
	{"voicemail", func(p *Prompts) *Prompt { return &p.Voicemail }},
	{"closed", func(p *Prompts) *Prompt { return &p.Closed }},
	{"beep", func(p *Prompts) *Prompt { return &p.Beep }},
	{"thanks", func(p *Prompts) *Prompt { return &p.Thanks }},
}

// DefaultPrompts returns the embedded prompts.
func DefaultPrompts() Prompts {
	var p Prompts
	for _, f := range promptFiles {
		b, err := defaultPrompts.ReadFile("prompts/" + f.name + ".wav")
		if err != nil {
			panic("embedded prompt missing: " + f.name) // a build error, not a run-time one
		}
		*f.get(&p) = Prompt{Name: f.name, WAV: b}
	}
	return p
}

// ShortPrompt is a one-second greeting ("您好"), for load tests and tests that should not wait.
func ShortPrompt() Prompt {
	b, _ := defaultPrompts.ReadFile("prompts/short.wav")
	return Prompt{Name: "short", WAV: b}
}

// LoadPrompts returns the embedded prompts with those found in dir (greeting.wav, queue.wav, hold.wav,
// voicemail.wav, closed.wav, beep.wav, thanks.wav) replacing them. dir "" means defaults only. A file in the
// wrong format is an error, so a bad prompt shows at start and not as silence on a call.
func LoadPrompts(dir string) (Prompts, error) {
	p := DefaultPrompts()
	if dir == "" {
		return p, nil
	}
	for _, f := range promptFiles {
		path := filepath.Join(dir, f.name+".wav")
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return p, err
		}
		if err := CheckWAV(b); err != nil {
			return p, fmt.Errorf("prompt %s: %w (convert with: sox in.wav -r 8000 -c 1 -b 16 -e signed-integer %s)", path, err, path)
		}
		*f.get(&p) = Prompt{Name: f.name, WAV: b}
	}
	return p, nil
}

// superseded are the SHA-256 sums of default prompts that earlier versions wrote into the prompts directory. A
// file still identical to one was never replaced by the operator, so WriteDefaults brings it up to date: the 9 s
// greeting played in full before any agent was rung gives way to the short one.
var superseded = map[string]string{
	"greeting": "832e3c02ec3644e69740d872825a170596c8598b4a4d3cd0d320018da08f0e27",
}

// WriteDefaults writes the embedded prompts into dir (for operators to replace), leaving existing files alone
// unless they are an unchanged copy of a superseded default.
func WriteDefaults(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	p := DefaultPrompts()
	for _, f := range promptFiles {
		path := filepath.Join(dir, f.name+".wav")
		if b, err := os.ReadFile(path); err == nil {
			if sum := sha256.Sum256(b); superseded[f.name] != hex.EncodeToString(sum[:]) {
				continue
			}
		}
		if err := os.WriteFile(path, f.get(&p).WAV, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CheckWAV verifies a RIFF/WAVE PCM file of 8 kHz, 16 bits, one channel.
func CheckWAV(b []byte) error {
	if len(b) < 44 || !bytes.Equal(b[0:4], []byte("RIFF")) || !bytes.Equal(b[8:12], []byte("WAVE")) {
		return errors.New("not a WAV file")
	}
	// Walk the chunks to find fmt (some tools add LIST chunks first).
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int(binary.LittleEndian.Uint32(b[off+4 : off+8]))
		if id == "fmt " {
			if off+8+16 > len(b) {
				return errors.New("truncated fmt chunk")
			}
			f := b[off+8:]
			format, chans := binary.LittleEndian.Uint16(f[0:2]), binary.LittleEndian.Uint16(f[2:4])
			rate, bits := binary.LittleEndian.Uint32(f[4:8]), binary.LittleEndian.Uint16(f[14:16])
			if format != 1 || chans != 1 || rate != 8000 || bits != 16 {
				return fmt.Errorf("want PCM 8000 Hz 16-bit mono, have format %d, %d Hz, %d-bit, %d channels", format, rate, bits, chans)
			}
			return nil
		}
		off += 8 + size + size%2
	}
	return errors.New("no fmt chunk")
}
