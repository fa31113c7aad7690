package main

import (
	"context"
	"path/filepath"

	"hotline/ticketing"
	"hotline/ticketing/attach"
	"hotline/ticketing/blob"
	"hotline/ticketing/kb"
	"hotline/ticketing/monitoring"
	"hotline/web"
)

// wireContent opens the file store (HOTLINE_STORAGE_*) and builds attachments and the knowledge base on it.
func wireContent(ctx context.Context, a *App, tickets *ticketing.Service, households *monitoring.Service) (blob.Store, error) {
	store, err := openStore(ctx, a.cfg)
	if err != nil {
		return nil, err
	}
	a.webDeps.Content = &web.Content{
		Attachments: attach.New(attach.Options{DB: a.db, Store: store, Tickets: tickets, Households: households,
			MaxBytes: int64(a.cfg.Storage.AttachmentMax), Log: a.log.With("component", "attachments")}),
		KB: kb.New(a.db, nil),
	}
	return store, nil
}

func openStore(ctx context.Context, cfg *Config) (blob.Store, error) {
	st := cfg.Storage
	if st.Backend == "s3" {
		return blob.NewS3(ctx, blob.S3Config{Endpoint: st.S3Endpoint, Bucket: st.S3Bucket, AccessKey: st.S3AccessKey,
			SecretKey: st.S3SecretKey, Region: st.S3Region, Secure: st.S3Secure, PathStyle: st.S3PathStyle})
	}
	dir := st.Dir
	if dir == "" {
		dir = filepath.Join(cfg.DataDir, "files")
	}
	return blob.NewLocal(dir)
}
