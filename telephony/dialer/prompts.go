package dialer

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"

	"hotline/telephony/media"
)

// The dialer's default prompts (Mandarin, espeak-ng; prompts/make_prompts.sh), embedded so a bare binary can run
// the standing 回访 campaign and the demo survey. Operators replace them in the prompt directory.
//
//go:embed prompts/*.wav
var defaultPrompts embed.FS

// Names of the embedded prompts.
const (
	PromptCallbackQuestion = "callback_question.wav" // 满意请按1，基本满意请按2，不满意请按3
	PromptCallbackBye      = "callback_bye.wav"
	PromptIncomeQuestion   = "income_question.wav" // 收入是否明显下降？是1 否2；不再接听按9
	PromptHealthQuestion   = "health_question.wav" // 是否有人生大病或受伤？是1 否2
	PromptSurveyBye        = "survey_bye.wav"
)

// WritePrompts writes the embedded prompts into dir, leaving files already there alone.
func WritePrompts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := defaultPrompts.ReadDir("prompts")
	if err != nil {
		return err
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if _, err := os.Stat(path); err == nil {
			continue
		}
		b, _ := defaultPrompts.ReadFile("prompts/" + e.Name())
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// CheckPrompts verifies that every named prompt exists in dir in the format diago plays (8 kHz 16-bit mono).
func CheckPrompts(dir string, names []string) error {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return fmt.Errorf("no prompt file %s in the prompt directory", n)
		}
		if err := media.CheckWAV(b); err != nil {
			return fmt.Errorf("prompt %s: %v (convert with: sox in.wav -r 8000 -c 1 -b 16 -e signed-integer %s)", n, err, n)
		}
	}
	return nil
}
