package web

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"hotline/ticketing"
	"hotline/ticketing/attach"
	"hotline/ticketing/blob/blobtest"
	"hotline/ticketing/kb"
	"hotline/ticketing/org"
)

// TestAttachmentAPI: an upload over HTTP to S3 (multipart, as the console sends it), refusals as JSON with a code
// and the field (a program named .jpg: 415; too large: 413), the file and its thumbnail served with the sniffed
// type to the ticket's unit and refused to another county; the ticket search finds a reply word.
func TestAttachmentAPI(t *testing.T) {
	f := newAPI(t)
	ctx := context.Background()
	svc := ticketing.NewService(f.db, ticketing.Options{})
	att := attach.New(attach.Options{DB: f.db, Store: blobtest.S3(t), Tickets: svc, MaxBytes: 100 << 10})
	s := newServer(Deps{DB: f.db, Redis: f.rdb, Tickets: &Tickets{Service: svc, Queues: ticketing.NewQueues(f.db, f.rdb, f.prefix), RedisPrefix: f.prefix},
		Content: &Content{Attachments: att, KB: kb.New(f.db, nil)}})
	f.srv.Config.Handler = s.handler
	clerk, stranger := f.user("heshan1", org.RoleStaff, "430903"), f.user("louxing1", org.RoleStaff, "430902")
	tk, err := svc.Create(ctx, org.System, ticketing.NewTicket{Source: ticketing.SourcePhone, CallerName: "刘建国",
		RegionCode: "430903", Kind: ticketing.KindHelp, Category: ticketing.CategoryMonitoringHelp, Content: "房屋漏雨", Dispatch: true})
	if err != nil {
		t.Fatal(err)
	}
	upload := func(token, name string, data []byte) (int, map[string]any) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("file", name)
		fw.Write(data)
		mw.Close()
		req, _ := http.NewRequest("POST", f.srv.URL+"/api/v1/tickets/"+itoa(int64(tk.ID))+"/attachments", &body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := upload(clerk, "照片.jpg", append([]byte("MZ\x90\x00\x03"), make([]byte, 500)...)); code != 415 ||
		out["code"] != "unsupported_file_type" || out["fields"].(map[string]any)["file"] == nil {
		t.Fatalf("exe as .jpg: %d %v", code, out)
	}
	var img bytes.Buffer
	png.Encode(&img, image.NewGray(image.Rect(0, 0, 640, 480)))
	if code, out := upload(clerk, "big.png", append(img.Bytes(), make([]byte, 120<<10)...)); code != 413 || out["code"] != "file_too_large" {
		t.Fatalf("too large: %d %v", code, out)
	}
	if code, out := upload(stranger, "x.png", img.Bytes()); code != 403 {
		t.Fatalf("another county uploaded: %d %v", code, out)
	}
	code, out := upload(clerk, "现场.png", img.Bytes())
	if code != 201 || out["has_thumbnail"] != true {
		t.Fatalf("upload: %d %v", code, out)
	}
	id := itoa(int64(out["id"].(float64)))
	get := func(token, path string) (int, string, []byte) {
		req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), b
	}
	if code, ct, b := get(clerk, "/api/v1/attachments/"+id); code != 200 || ct != "image/png" || !bytes.Equal(b, img.Bytes()) {
		t.Fatalf("file: %d %s %d bytes", code, ct, len(b))
	}
	if code, ct, _ := get(clerk, "/api/v1/attachments/"+id+"/thumbnail"); code != 200 || ct != "image/jpeg" {
		t.Fatalf("thumbnail: %d %s", code, ct)
	}
	for _, p := range []string{"/api/v1/attachments/" + id, "/api/v1/attachments/" + id + "/thumbnail", "/api/v1/tickets/" + itoa(int64(tk.ID)) + "/attachments"} {
		if code, _, _ := get(stranger, p); code != 403 {
			t.Errorf("another county: %s %d", p, code)
		}
	}
	var list struct{ Attachments []attach.Attachment }
	if code := f.call(clerk, "GET", "/api/v1/tickets/"+itoa(int64(tk.ID))+"/attachments", nil, nil, &list); code != 200 || len(list.Attachments) != 1 {
		t.Fatalf("list: %d %+v", code, list)
	}
	// Search over the API: a word of the clerk's reply.
	tk, _ = svc.Do(ctx, org.System, tk.ID, ticketing.ActSign, ticketing.ActionInput{})
	if _, err := svc.Do(ctx, org.System, tk.ID, ticketing.ActReply, ticketing.ActionInput{Reply: "已安排危房改造资金修缮"}); err != nil {
		t.Fatal(err)
	}
	var found struct {
		Tickets []struct{ Ticket ticketing.Ticket }
	}
	if code := f.call(clerk, "GET", "/api/v1/tickets?q=危房改造", nil, nil, &found); code != 200 || len(found.Tickets) != 1 || found.Tickets[0].Ticket.ID != tk.ID {
		t.Fatalf("search a reply word: %d %+v", code, found)
	}
}
