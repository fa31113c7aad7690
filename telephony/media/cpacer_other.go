//go:build !linux || !cgo

package media

import (
	"context"

	dmedia "github.com/emiago/diago/media"
)

// PacerEngine says which engine plays prompts in this build: without cgo only the Go loops exist (see
// cpacer_linux.go for the C thread and why it is better).
const PacerEngine = "Go loops (built without cgo)"

type cState struct{}

func (p *Pacer) playC(context.Context, *dmedia.RTPPacketWriter, dmedia.Codec, []byte, bool) (bool, error) {
	return false, nil
}

// Release does nothing here: the Go loops send only while a Play runs.
func (p *Pacer) Release(*dmedia.RTPPacketWriter) {}

func (p *Pacer) cStats() (wakeups, packets, silence, drops int64) { return 0, 0, 0, 0 }
