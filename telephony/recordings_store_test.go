package telephony

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"hotline/deploy/testenv"
	"hotline/ticketing/blob/blobtest"
	"hotline/ticketing/org"
)

// TestRecordingMovesToFileStore: once the call ends, its recording is copied to the S3 store and the local file
// removed; a second process with an empty recordings directory serves it. A voicemail's recording too.
func TestRecordingMovesToFileStore(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	store := blobtest.S3(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := NewService(Options{DB: db, RecordingsDir: dirA, Files: store})
	b := NewService(Options{DB: db, RecordingsDir: dirB, Files: store})

	wav := append([]byte("RIFF\x24\x00\x00\x00WAVEfmt "), bytes.Repeat([]byte{7}, 4000)...)
	record := func(rel string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dirA, rel)), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dirA, rel), wav, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	id, err := a.StartCall(ctx, CallStart{SIPCallID: "c1", Trunk: "12345", Caller: "13812345678", OfferedAt: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	record("2026-12-01/1-call.wav")
	if err := a.FinishAgentCall(ctx, id, &NewRecording{CallID: id, Kind: "call", Path: "2026-12-01/1-call.wav", Channels: 2, Bytes: int64(len(wav))},
		CallEnd{Disposition: DispAnswered, EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dirA, "2026-12-01/1-call.wav")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the local copy is still there: %v", err)
	}
	var rid RecordingID
	var key string
	if err := db.QueryRow(ctx, `SELECT id, coalesce(storage_key, '') FROM recordings WHERE call_id = $1`, id).Scan(&rid, &key); err != nil || key == "" {
		t.Fatalf("recording row: key %q, %v", key, err)
	}
	admin := org.Actor{Role: org.RoleAdmin, Name: "admin"}
	_, o, err := b.OpenRecording(ctx, admin, rid)
	if err != nil {
		t.Fatalf("the other process: %v", err)
	}
	got, _ := io.ReadAll(o)
	o.Close()
	if !bytes.Equal(got, wav) {
		t.Fatalf("served %d bytes, want the recording's %d", len(got), len(wav))
	}
	if _, _, err := b.OpenRecording(ctx, org.Actor{Role: org.RoleStaff, UnitID: 1}, rid); !errors.Is(err, org.ErrForbidden) {
		t.Fatalf("a clerk heard a call without a ticket: %v", err)
	}

	vm, err := a.StartCall(ctx, CallStart{SIPCallID: "c2", Trunk: "12345", Caller: "13812345679", OfferedAt: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	record("2026-12-01/2-voicemail.wav")
	if _, err := a.FinishVoicemail(ctx, vm, "13812345679", "", &NewRecording{CallID: vm, Kind: "voicemail", Path: "2026-12-01/2-voicemail.wav",
		Channels: 1, Bytes: int64(len(wav))}, 5*time.Second, CallEnd{EndedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(ctx, `SELECT id, coalesce(storage_key, '') FROM recordings WHERE call_id = $1`, vm).Scan(&rid, &key); err != nil || key == "" {
		t.Fatalf("voicemail row: key %q, %v", key, err)
	}
	if _, o, err := b.OpenRecording(ctx, admin, rid); err != nil {
		t.Fatalf("voicemail from the other process: %v", err)
	} else {
		o.Close()
	}
}
