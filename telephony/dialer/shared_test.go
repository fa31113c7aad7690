package dialer

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"hotline/deploy/testenv"
	"hotline/telephony/sipua"
	"hotline/ticketing/campaign"
)

// sharedSIP is a SIP server (intake's user agent) the dialer places its calls through, as in hotline (issue 16:
// one SIP user agent per process).
type sharedSIP struct {
	srv  *sipua.Server
	addr string
	runs chan error
}

// refuseAll is an intake that takes no call.
type refuseAll struct{}

func (refuseAll) HandleCall(ctx context.Context, c *sipua.Call) {
	_ = c.Dialog.Respond(sip.StatusForbidden, "Forbidden", nil)
}
func (refuseAll) Refused(*sipua.Trunk, *sip.Request, error) {}

func startShared(t *testing.T) *sharedSIP {
	t.Helper()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))
	srv, err := sipua.New(sipua.Config{Listeners: []sipua.Listener{{Transport: "udp", Addr: addr}}, KeepOpen: true,
		DrainTimeout: time.Second}, sipua.Deps{DB: db, Redis: rdb, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	s := &sharedSIP{srv: srv, addr: addr, runs: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { s.runs <- srv.Run(ctx, refuseAll{}) }()
	<-srv.Ready()
	t.Cleanup(func() {
		cancel()
		if err := <-s.runs; err != nil {
			t.Errorf("sip run: %v", err)
		}
		srv.Close()
	})
	return s
}

// TestCampaignThroughSharedUA: the dialer places its calls through intake's SIP user agent — the INVITEs leave
// from intake's address (no second SIP port or identity per process), keys still arrive, and the user agent keeps
// serving after intake has drained (KeepOpen) until it is closed.
func TestCampaignThroughSharedUA(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	rdb, prefix := testenv.Redis(t)
	sh := startShared(t)
	port, dir := startSippIn(t, 200*time.Millisecond, "-trace_msg")
	svc := campaign.NewService(db, campaign.Options{Directory: rangeDirectory{1, 10}})
	startEngine(t, svc, rdb, prefix, engineOpts{sippPort: port, promptDir: prompts(t), shared: sh})
	c, err := svc.Create(ctx, manager, campaign.NewCampaign{Name: "共用SIP", Purpose: campaign.PurposeCheckin, CallerID: "12345",
		Windows: allDay(), Pace: 50, Script: surveyScript(700), Retry: &campaign.RetryRules{NoAnswer: campaign.Retry{MaxAttempts: 1},
			Busy: campaign.Retry{MaxAttempts: 1}, Failed: campaign.Retry{MaxAttempts: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Launch(ctx, manager, c.ID); err != nil {
		t.Fatal(err)
	}
	waitFinished(t, svc, c.ID, time.Minute)
	var answered, keyed int
	db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE answers->>'income' IN ('1','2'))
		FROM campaign_targets WHERE campaign_id = $1`, c.ID).Scan(&answered, &keyed)
	if answered == 0 || keyed == 0 {
		t.Fatalf("through the shared user agent: %d completed, %d with a key", answered, keyed)
	}
	// Every INVITE sipp saw came from intake's listening address.
	_, sport, _ := net.SplitHostPort(sh.addr)
	vias := sippVias(t, dir)
	if len(vias) == 0 {
		t.Fatal("sipp logged no INVITE")
	}
	for _, v := range vias {
		if v != "127.0.0.1:"+sport {
			t.Fatalf("an INVITE came from %s, not from intake's user agent at %s", v, sh.addr)
		}
	}
}

// sippVias returns the top Via's sent-by (host:port) of every INVITE in sipp's message trace (-trace_msg).
func sippVias(t *testing.T, dir string) []string {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log"))
	var out []string
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			t.Fatal(err)
		}
		inInvite := false
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(line, "INVITE sip:"):
				inInvite = true
			case inInvite && (strings.HasPrefix(line, "Via:") || strings.HasPrefix(line, "v:")):
				f := strings.Fields(line)
				if len(f) >= 3 {
					out = append(out, strings.SplitN(f[2], ";", 2)[0])
				}
				inInvite = false
			}
		}
	}
	return out
}
