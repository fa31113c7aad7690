// Package audioconv turns an uploaded recording (WAV or MP3) into a prompt the dialer plays without resampling:
// 8 kHz, mono, 16-bit PCM WAV. The conversion is sox's (the system package, with libsox-fmt-mp3 for MP3), run on
// temporary files; what comes back is checked like every prompt (media.CheckWAV) before anyone stores it.
package audioconv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"hotline/telephony/media"
)

// Limits of an upload.
const (
	MaxUpload   = 10 << 20         // bytes of the uploaded file
	MaxDuration = 3 * time.Minute  // of the converted prompt
	convertTime = 60 * time.Second // sox on a 10 MB MP3 takes a few seconds
)

// ErrFormat is an upload that is neither WAV nor MP3 (by its bytes, whatever its name says).
var ErrFormat = errors.New("not a WAV or MP3 file")

// Sniff tells the format from the first bytes: "wav" (RIFF/WAVE), "mp3" (an ID3 tag or an MPEG audio frame header).
func Sniff(b []byte) (string, error) {
	switch {
	case len(b) >= 12 && bytes.Equal(b[0:4], []byte("RIFF")) && bytes.Equal(b[8:12], []byte("WAVE")):
		return "wav", nil
	case len(b) >= 10 && bytes.Equal(b[0:3], []byte("ID3")):
		return "mp3", nil
	case len(b) >= 4 && b[0] == 0xFF && b[1]&0xE0 == 0xE0 && b[1]&0x06 != 0 && b[2]&0xF0 != 0xF0:
		// Frame sync, a layer given, a valid bitrate index.
		return "mp3", nil
	}
	return "", ErrFormat
}

// Prompt is a converted recording.
type Prompt struct {
	WAV      []byte
	Format   string // of the upload: wav or mp3
	Duration time.Duration
}

// Convert sniffs the upload and converts it with sox into 8 kHz mono 16-bit WAV. Errors that are the file's
// fault wrap ErrFormat or say what is wrong in words meant for the uploader.
func Convert(ctx context.Context, in []byte) (*Prompt, error) {
	if len(in) > MaxUpload {
		return nil, fmt.Errorf("file larger than %d MB", MaxUpload>>20)
	}
	format, err := Sniff(in)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hotline-prompt-")
	if err != nil {
		return nil, fmt.Errorf("convert prompt: %v", err)
	}
	defer os.RemoveAll(dir)
	src, dst := filepath.Join(dir, "in."+format), filepath.Join(dir, "out.wav")
	if err := os.WriteFile(src, in, 0o600); err != nil {
		return nil, fmt.Errorf("convert prompt: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, convertTime)
	defer cancel()
	// -t names the input type, so a file is read as what its bytes are; the output is what diago plays.
	cmd := exec.CommandContext(ctx, "sox", "-V1", "-t", format, src, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer", "-t", "wav", dst)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("convert prompt: sox is not installed (deploy/install-deps.sh): %v", err)
		}
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(msg, "no handler for file extension") || strings.Contains(msg, "no handler for given file type") {
			return nil, fmt.Errorf("convert prompt: sox cannot read %s here (install libsox-fmt-mp3): %s", format, msg)
		}
		return nil, fmt.Errorf("%w: sox could not read it as %s (%s)", ErrFormat, format, firstLine(msg))
	}
	out, err := os.ReadFile(dst)
	if err != nil {
		return nil, fmt.Errorf("convert prompt: %v", err)
	}
	if err := media.CheckWAV(out); err != nil {
		return nil, fmt.Errorf("convert prompt: sox wrote %v", err)
	}
	d, err := Duration(out)
	if err != nil {
		return nil, fmt.Errorf("convert prompt: %v", err)
	}
	if d <= 0 {
		return nil, fmt.Errorf("%w: no audio in it", ErrFormat)
	}
	if d > MaxDuration {
		return nil, fmt.Errorf("recording of %s: at most %s", d.Round(time.Second), MaxDuration)
	}
	return &Prompt{WAV: out, Format: format, Duration: d}, nil
}

// Duration of an 8 kHz 16-bit mono WAV: the size of its data chunk.
func Duration(wav []byte) (time.Duration, error) {
	for off := 12; off+8 <= len(wav); {
		id := string(wav[off : off+4])
		size := int(binary.LittleEndian.Uint32(wav[off+4 : off+8]))
		if id == "data" {
			size = min(size, len(wav)-off-8) // sox may leave the size of a stream it could not seek
			return time.Duration(size/2) * time.Second / 8000, nil
		}
		off += 8 + size + size%2
	}
	return 0, errors.New("no data chunk")
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
