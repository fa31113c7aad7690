package main

import (
	"errors"
	"strings"
)

// StorageConfig says where files go (attachments, thumbnails, and call recordings once a call ends): a local
// directory for one machine, or an S3-compatible bucket (MinIO, Ceph, a cloud's OSS) so that any process of a
// cluster can serve any file.
type StorageConfig struct {
	Backend       string // local | s3
	Dir           string // local: default <data dir>/files
	S3Endpoint    string // host:port
	S3Bucket      string
	S3AccessKey   string
	S3SecretKey   string
	S3Region      string
	S3Secure      bool
	S3PathStyle   bool
	AttachmentMax int // bytes
}

func init() {
	st := func(c *Config) *StorageConfig { return &c.Storage }
	settings = append(settings,
		setting{Env: "HOTLINE_STORAGE_BACKEND", Flag: "storage-backend", Default: "local", Doc: "where attachments and recordings are kept: local (HOTLINE_STORAGE_DIR) or s3 (HOTLINE_STORAGE_S3_*)",
			field: func(c *Config) any { return &st(c).Backend }, check: func(c *Config) error {
				switch c.Storage.Backend {
				case "local":
					return nil
				case "s3":
					var missing []string
					for name, v := range map[string]string{"ENDPOINT": c.Storage.S3Endpoint, "BUCKET": c.Storage.S3Bucket,
						"ACCESS_KEY": c.Storage.S3AccessKey, "SECRET_KEY": c.Storage.S3SecretKey} {
						if v == "" {
							missing = append(missing, "HOTLINE_STORAGE_S3_"+name)
						}
					}
					if len(missing) > 0 {
						return errors.New("HOTLINE_STORAGE_BACKEND=s3 needs " + strings.Join(missing, ", "))
					}
					if strings.Contains(c.Storage.S3Endpoint, "://") {
						return errors.New("HOTLINE_STORAGE_S3_ENDPOINT: host:port without a scheme (HOTLINE_STORAGE_S3_SECURE chooses https)")
					}
					return nil
				}
				return errors.New("HOTLINE_STORAGE_BACKEND: local or s3")
			}},
		setting{Env: "HOTLINE_STORAGE_DIR", Flag: "storage-dir", Default: "", Doc: "local storage directory; default <data dir>/files",
			field: func(c *Config) any { return &st(c).Dir }},
		setting{Env: "HOTLINE_STORAGE_S3_ENDPOINT", Flag: "storage-s3-endpoint", Default: "", Doc: "S3-compatible endpoint, host:port (MinIO, Ceph RGW, OSS)",
			field: func(c *Config) any { return &st(c).S3Endpoint }},
		setting{Env: "HOTLINE_STORAGE_S3_BUCKET", Flag: "storage-s3-bucket", Default: "", Doc: "bucket (must exist)",
			field: func(c *Config) any { return &st(c).S3Bucket }},
		setting{Env: "HOTLINE_STORAGE_S3_ACCESS_KEY", Flag: "storage-s3-access-key", Default: "", Doc: "access key id",
			field: func(c *Config) any { return &st(c).S3AccessKey }},
		setting{Env: "HOTLINE_STORAGE_S3_SECRET_KEY", Flag: "storage-s3-secret-key", Default: "", Secret: true, Doc: "secret access key",
			field: func(c *Config) any { return &st(c).S3SecretKey }},
		setting{Env: "HOTLINE_STORAGE_S3_REGION", Flag: "storage-s3-region", Default: "", Doc: "region; empty: asked from the server",
			field: func(c *Config) any { return &st(c).S3Region }},
		setting{Env: "HOTLINE_STORAGE_S3_SECURE", Flag: "storage-s3-secure", Default: "true", Doc: "HTTPS to the endpoint",
			field: func(c *Config) any { return &st(c).S3Secure }},
		setting{Env: "HOTLINE_STORAGE_S3_PATH_STYLE", Flag: "storage-s3-path-style", Default: "true", Doc: "path-style requests (MinIO, Ceph); false: virtual-host style",
			field: func(c *Config) any { return &st(c).S3PathStyle }},
		setting{Env: "HOTLINE_ATTACHMENT_MAX_BYTES", Flag: "attachment-max-bytes", Default: "10485760", Doc: "largest attachment accepted (bytes)",
			field: func(c *Config) any { return &st(c).AttachmentMax }, check: func(c *Config) error {
				if c.Storage.AttachmentMax < 1024 || c.Storage.AttachmentMax > 200<<20 {
					return errors.New("HOTLINE_ATTACHMENT_MAX_BYTES: between 1024 and 209715200")
				}
				return nil
			}},
	)
}
