package media

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	dmedia "github.com/emiago/diago/media"
	"github.com/zaf/g711"
)

// Recorder writes what it is given of a call into a WAV file (8 kHz, 16-bit PCM) with one or two channels
// (stereo: left = the caller, right = what the caller heard). It decodes G.711 payloads and keeps the
// channels aligned to the wall clock: a gap in a stream (nobody talking, a pause in forwarding) becomes
// silence, so the two sides stay in step. Until Start nothing is written. Write may be called from two
// goroutines (one per channel); Close once, after both have stopped writing.
type Recorder struct {
	path     string
	channels int
	alaw     bool

	mu      sync.Mutex
	started bool
	t0      time.Time
	tracks  []*track
	closed  bool
}

type track struct {
	f       *os.File
	w       *bufio.Writer
	samples int64
}

// NewRecorder prepares a recording at path (its directory is created) for a call using codec (PCMU or PCMA).
func NewRecorder(path string, channels int, codec dmedia.Codec) (*Recorder, error) {
	name := strings.ToLower(codec.Name)
	if name != "pcmu" && name != "pcma" {
		return nil, fmt.Errorf("recording needs G.711, the call uses %s", codec.Name)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("recording channels %d", channels)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	r := &Recorder{path: path, channels: channels, alaw: name == "pcma"}
	for i := 0; i < channels; i++ {
		f, err := os.CreateTemp(filepath.Dir(path), ".rec-*.pcm")
		if err != nil {
			r.removeTracks()
			return nil, err
		}
		os.Remove(f.Name()) // unlinked at once: nothing is left behind if the process dies
		r.tracks = append(r.tracks, &track{f: f, w: bufio.NewWriterSize(f, 16<<10)})
	}
	return r, nil
}

// Start begins recording; positions are counted from t.
func (r *Recorder) Start(t time.Time) {
	r.mu.Lock()
	r.started, r.t0 = true, t
	r.mu.Unlock()
}

// Write records one G.711 payload on a channel (0 left, 1 right) as arriving at now.
func (r *Recorder) Write(ch int, payload []byte, now time.Time) {
	if len(payload) == 0 {
		return
	}
	var pcm []byte
	if r.alaw {
		pcm = g711.DecodeAlaw(payload)
	} else {
		pcm = g711.DecodeUlaw(payload)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || r.closed || ch >= len(r.tracks) {
		return
	}
	t := r.tracks[ch]
	n := int64(len(pcm) / 2)
	// Where this payload should end on the call's clock; pad with silence if the stream fell behind by more
	// than a packet (packets arrive in bursts, so a small lag is jitter, not a gap).
	want := int64(now.Sub(r.t0).Seconds()*8000) - n
	if gap := want - t.samples; gap > 160 {
		t.w.Write(make([]byte, gap*2))
		t.samples += gap
	}
	t.w.Write(pcm)
	t.samples += n
}

// Close writes the WAV file (channels padded to the same length, interleaved) and returns its size and
// duration. A recording that never started has no file and returns os.ErrNotExist.
func (r *Recorder) Close() (int64, time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return 0, 0, errors.New("recorder closed twice")
	}
	r.closed = true
	defer r.removeTracks()
	if !r.started {
		return 0, 0, os.ErrNotExist
	}
	var frames int64
	for _, t := range r.tracks {
		if err := t.w.Flush(); err != nil {
			return 0, 0, err
		}
		frames = max(frames, t.samples)
		if _, err := t.f.Seek(0, io.SeekStart); err != nil {
			return 0, 0, err
		}
	}
	out, err := os.OpenFile(r.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return 0, 0, err
	}
	dataBytes := frames * 2 * int64(r.channels)
	w := bufio.NewWriterSize(out, 64<<10)
	writeWAVHeader(w, r.channels, dataBytes)
	readers := make([]*bufio.Reader, len(r.tracks))
	for i, t := range r.tracks {
		readers[i] = bufio.NewReader(t.f)
	}
	sample := make([]byte, 2)
	for i := int64(0); i < frames; i++ {
		for c, rd := range readers {
			if i < r.tracks[c].samples {
				if _, err := io.ReadFull(rd, sample); err != nil {
					out.Close()
					return 0, 0, err
				}
			} else {
				sample[0], sample[1] = 0, 0
			}
			w.Write(sample)
		}
	}
	if err := w.Flush(); err != nil {
		out.Close()
		return 0, 0, err
	}
	if err := out.Close(); err != nil {
		return 0, 0, err
	}
	return 44 + dataBytes, time.Duration(frames) * time.Second / 8000, nil
}

func (r *Recorder) removeTracks() {
	for _, t := range r.tracks {
		t.f.Close()
	}
	r.tracks = nil
}

func writeWAVHeader(w io.Writer, channels int, dataBytes int64) {
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+dataBytes))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], 8000)
	binary.LittleEndian.PutUint32(h[28:], uint32(8000*2*channels))
	binary.LittleEndian.PutUint16(h[32:], uint16(2*channels))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(dataBytes))
	w.Write(h)
}

// Levels returns the RMS level (0..1) of each channel of a 16-bit PCM WAV file written by Recorder (or any
// canonical 44-byte-header WAV), so tests and operators can tell a recording from silence.
func Levels(path string) ([]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[36:40]) != "data" {
		return nil, errors.New("not a canonical WAV file")
	}
	chans := int(binary.LittleEndian.Uint16(b[22:24]))
	if chans < 1 {
		return nil, errors.New("no channels")
	}
	data := b[44:]
	sums := make([]float64, chans)
	frames := len(data) / (2 * chans)
	for i := 0; i < frames; i++ {
		for c := 0; c < chans; c++ {
			v := float64(int16(binary.LittleEndian.Uint16(data[(i*chans+c)*2:]))) / 32768
			sums[c] += v * v
		}
	}
	out := make([]float64, chans)
	for c := range sums {
		if frames > 0 {
			out[c] = math.Sqrt(sums[c] / float64(frames))
		}
	}
	return out, nil
}
