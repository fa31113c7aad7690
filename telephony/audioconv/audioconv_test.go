package audioconv

import (
	"context"
	"errors"
	"testing"
	"time"

	"hotline/telephony/media"
)

// The format is what the bytes say, whatever the file was called.
func TestSniff(t *testing.T) {
	wav := media.ToneWAV(440, 100*time.Millisecond)
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"wav", wav, "wav"},
		{"id3", append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), make([]byte, 20)...), "mp3"},
		{"mpeg frame", []byte{0xFF, 0xFB, 0x90, 0x64, 0, 0}, "mp3"},
		{"text", []byte("这不是录音"), ""},
		{"riff but avi", []byte("RIFF\x00\x00\x00\x00AVI LIST"), ""},
		{"bad bitrate", []byte{0xFF, 0xFB, 0xF0, 0x64}, ""},
		{"empty", nil, ""},
	} {
		got, err := Sniff(c.b)
		if got != c.want || (c.want == "" && !errors.Is(err, ErrFormat)) {
			t.Errorf("%s: %q %v, want %q", c.name, got, err, c.want)
		}
	}
}

// A prompt already in the right format goes through sox unchanged in length; a truncated WAV is the file's fault.
func TestConvert(t *testing.T) {
	wav := media.ToneWAV(440, 500*time.Millisecond)
	p, err := Convert(context.Background(), wav)
	if err != nil {
		t.Fatal(err)
	}
	if p.Format != "wav" || p.Duration != 500*time.Millisecond || media.CheckWAV(p.WAV) != nil {
		t.Errorf("converted: %s %s", p.Format, p.Duration)
	}
	if _, err := Convert(context.Background(), wav[:30]); !errors.Is(err, ErrFormat) {
		t.Errorf("truncated WAV: %v", err)
	}
	if _, err := Convert(context.Background(), make([]byte, MaxUpload+1)); err == nil || errors.Is(err, ErrFormat) {
		t.Errorf("too large: %v", err)
	}
}
