package media

import (
	"bytes"
	"encoding/binary"
	"math"
	"time"
)

// ToneWAV returns an 8 kHz 16-bit mono WAV file holding a sine tone of the given frequency and length: the
// format diago plays without resampling. Load tools and tests use it as a stand-in prompt.
func ToneWAV(hz float64, d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	var b bytes.Buffer
	b.Grow(44 + 2*n)
	writeWAVHeader(&b, 1, int64(2*n))
	sample := make([]byte, 2)
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint16(sample, uint16(int16(3000*math.Sin(2*math.Pi*hz*float64(i)/8000))))
		b.Write(sample)
	}
	return b.Bytes()
}
