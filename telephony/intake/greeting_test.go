package intake

import (
	"context"
	"testing"
	"time"

	"hotline/telephony"
	"hotline/telephony/media"
	"hotline/telephony/phonetest"
)

// TestAgentRungWhileGreetingPlays: the agent's phone rings while the caller still hears the greeting, and once
// the agent answers the caller is put through without hearing the rest of it: at once (no minimum), after the
// configured minimum (the recording notice), or only after all of it when the centre requires the full greeting.
//
// Everything is measured on the caller's media clock, i.e. in seconds of audio the caller's phone received
// (the greeting is a 600 Hz tone, the agent sends 1000 Hz): when the agent's phone rang, how much greeting had
// been heard; at which point of the audio the agent's voice took over. No wall-clock time is asserted.
func TestAgentRungWhileGreetingPlays(t *testing.T) {
	const greetingSec = 3.0
	greeting := media.Prompt{Name: "greeting", WAV: media.ToneWAV(600, time.Duration(greetingSec*float64(time.Second)))}
	for _, tc := range []struct {
		name        string
		min         time.Duration
		full        bool
		answerAfter time.Duration
		// bounds of the audio second at which the caller starts hearing the agent
		switchFrom, switchBefore float64
	}{
		{name: "cut at once", answerAfter: 800 * time.Millisecond, switchFrom: 0.3, switchBefore: greetingSec - 1},
		{name: "recording notice first", min: 1500 * time.Millisecond, answerAfter: 200 * time.Millisecond,
			switchFrom: 1.3, switchBefore: greetingSec - 0.4},
		{name: "full greeting", full: true, answerAfter: 200 * time.Millisecond, switchFrom: greetingSec - 0.2, switchBefore: greetingSec + 1.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{greeting: &greeting, greetingMin: tc.min, greetingFull: tc.full})
			agentID := r.agent("agent1")
			agent := r.agentPhone("agent1", phonetest.Options{ToneHz: 1000, AnswerAfter: tc.answerAfter})
			r.setState(agentID, telephony.StateReady, "")
			citizen := r.caller("127.0.0.1", 440)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			call, err := citizen.Dial(ctx, r.uri("12345"), phonetest.DialOptions{From: caller})
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer call.Hangup(ctx)

			waitFor(t, "agent's phone rung", func() bool { return agent.Rang() > 0 })
			heardAtRing := call.Stats().Seconds
			if heardAtRing >= greetingSec {
				t.Fatalf("agent's phone rang after the caller had heard %.2f s: the whole %.1f s greeting", heardAtRing, greetingSec)
			}

			// Listen in chunks of 0.2 s of audio until the agent's tone is heard.
			heard, greetingChunks := call.Stats().Seconds, 0
			call.ResetStats()
			switchAt := -1.0
			for heard < greetingSec+5 && switchAt < 0 {
				waitFor(t, "audio", func() bool { return call.Stats().Seconds >= 0.2 })
				s := call.Stats()
				call.ResetStats()
				switch {
				case s.RMS > 0.05 && near(s.FreqHz, 1000, 120):
					switchAt = heard
				case s.RMS > 0.05 && near(s.FreqHz, 600, 60):
					greetingChunks++
				}
				heard += s.Seconds
			}
			t.Logf("agent rang at %.2f s of greeting heard; caller hears the agent from %.2f s (%d greeting chunks before)",
				heardAtRing, switchAt, greetingChunks)
			if switchAt < 0 {
				t.Fatal("the caller never heard the agent")
			}
			if greetingChunks == 0 {
				t.Error("the caller heard no greeting before the agent")
			}
			if switchAt < tc.switchFrom || switchAt >= tc.switchBefore {
				t.Errorf("caller put through at %.2f s of audio, want within [%.1f, %.1f) of a %.1f s greeting",
					switchAt, tc.switchFrom, tc.switchBefore, greetingSec)
			}
			select {
			case ac := <-agent.Answered():
				waitFor(t, "agent hears the caller", func() bool { return ac.Stats().Seconds > 0.3 })
				if s := ac.Stats(); !near(s.FreqHz, 440, 40) {
					t.Errorf("agent hears %+v, want the caller's 440 Hz", s)
				}
			default:
				t.Fatal("agent's call not delivered")
			}
		})
	}
}
