package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
)

// The harness every browser test shares: one headless Chromium per person at a desk, its console errors
// collected, steps run with a time limit, and on a failure the page, a screenshot and the server's output.

// browserOptions say what kind of screen the person has. Zero values: a 1366×768 desktop.
type browserOptions struct {
	width, height int
	phone         bool   // a 390×844 touch screen at scale 2
	userAgent     string // "" keeps Chromium's own
	fullPage      bool   // screenshots of the whole page, not only the viewport
	errs          *browserErrors
	// onFail adds to a failure's report (say, the database's activity).
	onFail func() string
}

type browser struct {
	t     *testing.T
	ctx   context.Context
	who   string
	shots string
	p     *proc
	errs  *browserErrors
	opt   browserOptions
}

// newBrowser starts Chromium with a profile of its own (no cookies shared with another browser), for the time
// of parent; it is closed and its profile removed when the test ends. Failures print p's output.
func newBrowser(t *testing.T, parent context.Context, who, shots string, p *proc, o browserOptions) *browser {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s missing: run deploy/install-deps.sh test", chromium)
	}
	if o.width == 0 {
		o.width, o.height = 1366, 768
	}
	if o.errs == nil {
		o.errs = &browserErrors{}
	}
	profile, err := os.MkdirTemp("", "hotline-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after the browser is gone (its helpers may write a moment after it exits).
	t.Cleanup(func() {
		for i := 0; i < 50 && os.RemoveAll(profile) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	flags := []chromedp.ExecAllocatorOption{chromedp.ExecPath(chromium), chromedp.Headless,
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(profile)}
	if o.userAgent != "" {
		flags = append(flags, chromedp.UserAgent(o.userAgent))
	}
	viewport := chromedp.EmulateViewport(int64(o.width), int64(o.height))
	if o.phone {
		viewport = chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2), chromedp.EmulateTouch)
	} else {
		flags = append(flags, chromedp.WindowSize(o.width, o.height))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, flags...)
	c, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	o.errs.listen(c, who)
	if err := chromedp.Run(c, log.Enable(), runtime.Enable(), viewport); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: c, who: who, shots: shots, p: p, errs: o.errs, opt: o}
}

// run performs the steps within limit; on a failure it saves a screenshot and stops the test with the page,
// the browser's errors and the server's output.
func (b *browser) run(what string, limit time.Duration, actions ...chromedp.Action) {
	b.t.Helper()
	sc, cancel := context.WithTimeout(b.ctx, limit)
	defer cancel()
	if err := chromedp.Run(sc, actions...); err != nil {
		hc, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		var html string
		var png []byte
		chromedp.Run(hc, chromedp.OuterHTML("body", &html, chromedp.ByQuery), chromedp.CaptureScreenshot(&png))
		if len(png) > 0 {
			os.WriteFile(filepath.Join(b.shots, "failed-"+strings.ReplaceAll(what, " ", "-")+".png"), png, 0o644)
		}
		extra := ""
		if b.opt.onFail != nil {
			extra = b.opt.onFail()
		}
		out := ""
		if b.p != nil {
			out = tail(b.p.out.String(), 3000)
		}
		b.t.Fatalf("%s: %v\nbrowser errors: %v\npage: %s\n%s\nhotline output:\n%s", what, err, b.errs.list(), tail(html, 4000), extra, out)
	}
}

// shot saves a screenshot under name once Element Plus's transitions have finished.
func (b *browser) shot(name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		time.Sleep(400 * time.Millisecond)
		var png []byte
		var err error
		if b.opt.fullPage {
			err = chromedp.FullScreenshot(&png, 100).Do(ctx)
		} else {
			err = chromedp.CaptureScreenshot(&png).Do(ctx)
		}
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644)
	})
}

// noErrors fails the test if a page reported an error.
func (b *browser) noErrors() {
	b.t.Helper()
	if es := b.errs.list(); len(es) > 0 {
		b.t.Errorf("browser errors:\n%s", strings.Join(es, "\n"))
	}
}

// closeDrawer closes an Element Plus drawer by its close button until the element inside it is gone: a click
// that lands while the drawer is still sliding in is lost on a busy machine, so it is clicked again.
func closeDrawer(inside string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var open bool
			if err := chromedp.Evaluate(fmt.Sprintf(`(() => { const d = document.querySelector(%q); if (!d) return false;
				const b = document.querySelector('.el-drawer__close-btn'); if (b) b.click(); return true; })()`, inside), &open).Do(ctx); err != nil {
				return err
			}
			if !open {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("drawer with %s still open: %w", inside, ctx.Err())
			case <-time.After(300 * time.Millisecond):
			}
		}
	})
}

// press clicks an element by script once it is visible. A mouse click lands wherever the element is on screen at
// that instant: on a busy machine a dialog still sliding in, or a dropdown left open over it, takes the click
// (seen in CI with three test groups side by side); a script click reaches the element itself.
func press(sel string) chromedp.Action {
	return chromedp.Tasks{chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(fmt.Sprintf(`document.querySelector(%q).click(), true`, sel), nil)}
}

// signInTasks signs user in on the console's login page and waits for the top bar's navigation.
func signInTasks(base, user, password string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.Navigate(base + "/login"),
		chromedp.WaitVisible("#login-username", chromedp.ByID),
		chromedp.SendKeys("#login-username", user, chromedp.ByID),
		chromedp.SendKeys("#login-password", password, chromedp.ByID),
		chromedp.Click("#login-submit", chromedp.ByID),
		chromedp.WaitVisible("header.topbar nav a", chromedp.ByQuery),
	}
}

// upWithDB starts `hotline up` on a fresh environment with extra settings, waits until it is ready and connects
// to its database; ctx ends after limit, or with the test.
func upWithDB(t *testing.T, limit time.Duration, extra ...string) (upEnv, *proc, context.Context, *pgx.Conn) {
	t.Helper()
	e := newUpEnv(t)
	p := startHotline(t, append(e.env, extra...), "up")
	waitReady(t, p, e.base)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	db, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return e, p, ctx, db
}
