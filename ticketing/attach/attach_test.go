package attach_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"testing"

	"hotline/deploy/testenv"
	"hotline/ticketing"
	"hotline/ticketing/attach"
	"hotline/ticketing/blob"
	"hotline/ticketing/blob/blobtest"
	"hotline/ticketing/monitoring"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

func photo(t *testing.T, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		for y := range h {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAttachments runs the same cases on the local directory and on S3: type sniffing (a Windows program named
// .jpg is refused), the size limit, the thumbnail, the ticket event, and refusal to a clerk of another county,
// for ticket and household attachments.
func TestAttachments(t *testing.T) {
	local, err := blob.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) blob.Store
	}{
		{"local", func(*testing.T) blob.Store { return local }},
		{"s3", func(t *testing.T) blob.Store { return blobtest.S3(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := testenv.DB(t)
			store := tc.store(t)
			key, _ := pii.ParseKey(pii.NewKey())
			box, _ := pii.New(key)
			tsvc := ticketing.NewService(db, ticketing.Options{})
			mon := monitoring.New(monitoring.Config{DB: db, Box: box})
			svc := attach.New(attach.Options{DB: db, Store: store, Tickets: tsvc, Households: mon, MaxBytes: 200 << 10})

			mk := func(role org.Role, unit, name string) org.Actor {
				u, err := org.UnitByCode(ctx, db, unit)
				if err != nil {
					t.Fatal(err)
				}
				usr, err := org.CreateUser(ctx, db, org.NewUser{Username: name, DisplayName: name, Password: "password1", Role: role, UnitID: u.ID})
				if err != nil {
					t.Fatal(err)
				}
				return usr.Actor()
			}
			clerk, stranger := mk(org.RoleStaff, "430903", "heshan1"), mk(org.RoleStaff, "430902", "louxing1")
			campaign := mk(org.RoleCampaignManager, "div-monitoring", "campaign1")
			tk, err := tsvc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "刘建国",
				RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "房屋漏雨", Dispatch: true})
			if err != nil {
				t.Fatal(err)
			}
			target := attach.Target{TicketID: tk.ID}

			// A Windows program renamed .jpg: the bytes decide, and they are no photo.
			exe := append([]byte("MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff"), bytes.Repeat([]byte{0}, 600)...)
			if _, err := svc.Upload(ctx, clerk, target, "房屋照片.jpg", bytes.NewReader(exe)); !errors.Is(err, attach.ErrFileType) {
				t.Fatalf("exe as .jpg: %v, want ErrFileType", err)
			}
			// HTML named .png is refused too (it would run in the browser if served as such).
			if _, err := svc.Upload(ctx, clerk, target, "a.png", bytes.NewReader([]byte("<html><script>alert(1)</script>"))); !errors.Is(err, attach.ErrFileType) {
				t.Fatalf("html as .png: %v", err)
			}
			big := append(photo(t, 8, 8), bytes.Repeat([]byte{0}, 200<<10)...)
			if _, err := svc.Upload(ctx, clerk, target, "big.png", bytes.NewReader(big)); !errors.Is(err, attach.ErrTooLarge) {
				t.Fatalf("over the limit: %v, want ErrTooLarge", err)
			}
			var n int
			_ = db.QueryRow(ctx, `SELECT count(*) FROM attachments`).Scan(&n)
			if n != 0 {
				t.Fatalf("%d rows after refused uploads", n)
			}

			pic := photo(t, 800, 600)
			at, err := svc.Upload(ctx, clerk, target, `C:\Users\clerk\现场照片.png`, bytes.NewReader(pic))
			if err != nil {
				t.Fatal(err)
			}
			if at.ContentType != "image/png" || at.Filename != "现场照片.png" || !at.HasThumb || *at.Width != 800 {
				t.Fatalf("stored %+v", at)
			}
			_, o, err := svc.Open(ctx, clerk, at.ID, true)
			if err != nil {
				t.Fatal(err)
			}
			th, err := jpeg.Decode(o)
			o.Close()
			if err != nil {
				t.Fatalf("thumbnail is no JPEG: %v", err)
			}
			if b := th.Bounds(); b.Dx() != 320 || b.Dy() != 240 {
				t.Fatalf("thumbnail %v, want 320×240", b)
			}
			_, o, err = svc.Open(ctx, clerk, at.ID, false)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(o)
			o.Close()
			if !bytes.Equal(got, pic) {
				t.Fatal("the file read back differs")
			}
			evs, err := tsvc.Events(ctx, clerk, tk.ID)
			if err != nil {
				t.Fatal(err)
			}
			if last := evs[len(evs)-1]; last.Action != "attach" || last.Data["filename"] != "现场照片.png" {
				t.Fatalf("last event %+v, want the upload", last)
			}

			// Another county's clerk: neither the file, the thumbnail, the list nor an upload.
			if _, _, err := svc.Open(ctx, stranger, at.ID, false); !errors.Is(err, org.ErrForbidden) {
				t.Fatalf("another county opened the file: %v", err)
			}
			if _, _, err := svc.Open(ctx, stranger, at.ID, true); !errors.Is(err, org.ErrForbidden) {
				t.Fatalf("another county opened the thumbnail: %v", err)
			}
			if _, err := svc.List(ctx, stranger, target); !errors.Is(err, org.ErrForbidden) {
				t.Fatalf("another county listed: %v", err)
			}
			if _, err := svc.Upload(ctx, stranger, target, "x.png", bytes.NewReader(pic)); !errors.Is(err, org.ErrForbidden) {
				t.Fatalf("another county uploaded: %v", err)
			}
			// Campaign managers read monitoring tickets but do not add to them.
			if _, err := svc.Upload(ctx, campaign, target, "x.png", bytes.NewReader(pic)); !errors.Is(err, org.ErrForbidden) {
				t.Fatalf("campaign manager uploaded: %v", err)
			}

			// A household visit's photo (入户核实照片).
			if _, err := db.Exec(ctx, `INSERT INTO households (id, number, county_code, township_code, head_name, monitoring_type)
				VALUES (42, 'T42', '430903', '430903001', '测试户主', 'marginal')`); err != nil {
				t.Fatal(err)
			}
			visit, err := mon.AddContact(ctx, clerk, monitoring.Contact{HouseholdID: 42, Kind: monitoring.ContactVisit, Summary: "入户核实"})
			if err != nil {
				t.Fatal(err)
			}
			ht := attach.Target{HouseholdID: 42, ContactID: visit.ID}
			hat, err := svc.Upload(ctx, clerk, ht, "入户核实.png", bytes.NewReader(pic))
			if err != nil {
				t.Fatal(err)
			}
			if list, err := svc.List(ctx, clerk, attach.Target{HouseholdID: 42}); err != nil || len(list) != 1 || list[0].ID != hat.ID {
				t.Fatalf("household list %v %v", list, err)
			}
			if _, _, err := svc.Open(ctx, stranger, hat.ID, false); !errors.Is(err, org.ErrForbidden) {
				t.Fatalf("another county opened the visit photo: %v", err)
			}
			if _, err := svc.Upload(ctx, stranger, ht, "x.png", bytes.NewReader(pic)); !errors.Is(err, org.ErrForbidden) {
				t.Fatalf("another county added a visit photo: %v", err)
			}
		})
	}
}

func TestSniff(t *testing.T) {
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"pdf", []byte("%PDF-1.7\n1 0 obj"), "application/pdf"},
		{"jpeg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF\x00"), "image/jpeg"},
		{"exe", []byte("MZ\x90\x00"), ""},
		{"zip", []byte("PK\x03\x04\x14\x00"), ""},
		{"text", []byte("就是一段文字"), ""},
		{"svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), ""},
	} {
		got, err := attach.Sniff(tc.data)
		if got != tc.want || (tc.want == "") != errors.Is(err, attach.ErrFileType) {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
}
