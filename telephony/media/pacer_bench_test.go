package media

import (
	"bytes"
	"context"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago"
	dmedia "github.com/emiago/diago/media"
	"github.com/pion/rtp"
)

// BenchmarkHoldMusic plays hold music to N calls at once over real RTP sessions on loopback (one sink socket),
// the old way (diago's playback: a goroutine and a 20 ms ticker per call, the WAV decoded and encoded on every
// play) and through the Pacer, and reports per mode: the worst gap between two packets of a call, the share of
// calls with a gap over 40 ms, the p99 and worst Go scheduler latency (runtime/metrics, what a trace shows as
// goroutines waiting to run), GC cycles, bytes allocated per packet and timer wake-ups per packet.
//
// The pacer mode measures the Go loops: the writer that records send times is not a diago RTPSession, so the C
// thread cannot send for it (its gaps are measured end to end by `telephony/bench/bench.sh media`).
//
//	PACE_CALLS=1500 PACE_SECONDS=10 go test -run '^$' -bench HoldMusic -benchtime 1x ./telephony/media/
//	(add -trace /tmp/pace.trace to look at it with go tool trace)
func BenchmarkHoldMusic(b *testing.B) {
	calls := envInt("PACE_CALLS", 300)
	secs := envInt("PACE_SECONDS", 3)
	for _, mode := range []string{"diago", "pacer"} {
		b.Run(mode, func(b *testing.B) {
			for range b.N {
				r := holdMusicRun(b, mode, calls, time.Duration(secs)*time.Second)
				b.ReportMetric(float64(r.worst.Microseconds())/1000, "worst-gap-ms")
				b.ReportMetric(100*float64(r.over40)/float64(calls), "%calls>40ms")
				b.ReportMetric(float64(r.schedP99.Microseconds())/1000, "sched-p99-ms")
				b.ReportMetric(float64(r.schedMax.Microseconds())/1000, "sched-max-ms")
				b.ReportMetric(float64(r.gcs), "GCs")
				b.ReportMetric(r.bytesPerPacket, "B/packet")
				b.ReportMetric(r.wakeupsPerPacket, "wakeups/packet")
			}
		})
	}
}

type holdResult struct {
	worst, schedP99, schedMax time.Duration
	over40, gcs               int
	bytesPerPacket            float64
	wakeupsPerPacket          float64
}

// gapWriter is diago's RTP session with the send times of one call recorded.
type gapWriter struct {
	rs      *dmedia.RTPSession
	last    time.Time
	worst   time.Duration
	packets int
}

func (g *gapWriter) WriteRTP(p *rtp.Packet) error {
	now := time.Now()
	if !g.last.IsZero() {
		g.worst = max(g.worst, now.Sub(g.last))
	}
	g.last = now
	g.packets++
	return g.rs.WriteRTP(p)
}

func holdMusicRun(b *testing.B, mode string, calls int, d time.Duration) holdResult {
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := sink.Read(buf); err != nil {
				return
			}
		}
	}()
	prompt := DefaultPrompts().Hold
	audio := prompt.Payload(dmedia.CodecAudioAlaw)
	gws := make([]*gapWriter, calls)
	writers := make([]*dmedia.RTPPacketWriter, calls)
	for i := range gws {
		sess, err := dmedia.NewMediaSession(net.IPv4(127, 0, 0, 1), 0)
		if err != nil {
			b.Fatal(err)
		}
		defer sess.Close()
		sess.SetRemoteAddr(sink.LocalAddr().(*net.UDPAddr))
		gws[i] = &gapWriter{rs: dmedia.NewRTPSession(sess)}
		writers[i] = dmedia.NewRTPPacketWriter(gws[i], dmedia.CodecAudioAlaw)
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	sched := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(sched)
	h0 := append([]uint64(nil), sched[0].Value.Float64Histogram().Counts...)

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	p := &Pacer{}
	for i := range calls {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if mode == "pacer" {
				p.Play(ctx, writers[i], dmedia.CodecAudioAlaw, audio, true)
				return
			}
			// What intake did before: diago's playback, again and again, stopped when the call's context ends.
			for ctx.Err() == nil {
				pb := diago.NewAudioPlayback(writers[i], dmedia.CodecAudioAlaw)
				ctl := diago.NewAudioPlaybackControl(pb)
				stop := context.AfterFunc(ctx, ctl.Stop)
				ctl.Play(bytes.NewReader(prompt.WAV), "audio/wav")
				stop()
			}
		}(i)
	}
	wg.Wait()
	p.Wait()

	runtime.ReadMemStats(&m1)
	metrics.Read(sched)
	h := sched[0].Value.Float64Histogram()
	var r holdResult
	packets := 0
	worsts := make([]time.Duration, 0, calls)
	for _, g := range gws {
		packets += g.packets
		worsts = append(worsts, g.worst)
		if g.worst > 40*time.Millisecond {
			r.over40++
		}
	}
	slices.Sort(worsts)
	r.worst = worsts[len(worsts)-1]
	r.gcs = int(m1.NumGC - m0.NumGC)
	r.bytesPerPacket = float64(m1.TotalAlloc-m0.TotalAlloc) / float64(max(packets, 1))
	if mode == "pacer" {
		w, _ := p.Stats()
		r.wakeupsPerPacket = float64(w) / float64(max(packets, 1))
	} else {
		r.wakeupsPerPacket = 1 // one ticker wake-up of the call's goroutine per packet (diago's RTPPacketWriter.Write)
	}
	var total, acc uint64
	for i := range h.Counts {
		total += h.Counts[i] - h0[i]
	}
	for i := range h.Counts {
		c := h.Counts[i] - h0[i]
		acc += c
		ub := h.Buckets[i+1]
		if math.IsInf(ub, 1) {
			ub = h.Buckets[i]
		}
		if r.schedP99 == 0 && acc >= total-total/100 {
			r.schedP99 = time.Duration(ub * float64(time.Second))
		}
		if c > 0 {
			r.schedMax = time.Duration(ub * float64(time.Second))
		}
	}
	b.Logf("%s: %d calls, %d packets, worst gap %s, calls with a gap > 40 ms %d, sched p99 %s max %s, %d GCs, %.0f B/packet",
		mode, calls, packets, r.worst, r.over40, r.schedP99, r.schedMax, r.gcs, r.bytesPerPacket)
	return r
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
