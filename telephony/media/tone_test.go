package media

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ToneWAV is a valid prompt (CheckWAV), of the asked length, and not silence.
func TestToneWAV(t *testing.T) {
	b := ToneWAV(440, 250*time.Millisecond)
	if err := CheckWAV(b); err != nil {
		t.Fatal(err)
	}
	if got := len(b) - 44; got != 2*2000 {
		t.Fatalf("%d data bytes, want 4000", got)
	}
	path := filepath.Join(t.TempDir(), "tone.wav")
	os.WriteFile(path, b, 0o644)
	lv, err := Levels(path)
	if err != nil || len(lv) != 1 || lv[0] < 0.01 {
		t.Fatalf("levels %v %v", lv, err)
	}
}
