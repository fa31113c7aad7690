package main

import (
	"errors"

	"hotline/ticketing/org"
)

// AdminConfig is the first-run bootstrap of `hotline serve`: the first admin of an empty installation.
type AdminConfig struct {
	BootstrapAdmin         string // username of the first admin; "" = no bootstrap
	BootstrapAdminPassword string // its password (better: HOTLINE_BOOTSTRAP_ADMIN_PASSWORD_FILE)
}

func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_BOOTSTRAP_ADMIN", Flag: "bootstrap-admin", Default: "",
			Doc:   "hotline serve: username of the first admin, created only while the database has no active admin (then ignored)",
			field: func(c *Config) any { return &c.Admin.BootstrapAdmin },
			check: func(c *Config) error {
				if c.Admin.BootstrapAdmin != "" && c.Admin.BootstrapAdminPassword == "" {
					return errors.New("HOTLINE_BOOTSTRAP_ADMIN is set without HOTLINE_BOOTSTRAP_ADMIN_PASSWORD_FILE (or HOTLINE_BOOTSTRAP_ADMIN_PASSWORD)")
				}
				if c.Admin.BootstrapAdmin != "" {
					if err := org.CheckNewPassword(c.Admin.BootstrapAdmin, c.Admin.BootstrapAdminPassword); err != nil {
						return errors.New("HOTLINE_BOOTSTRAP_ADMIN_PASSWORD: " + err.(*org.ValidationError).Fields["new_password"])
					}
				}
				return nil
			}},
		setting{Env: "HOTLINE_BOOTSTRAP_ADMIN_PASSWORD", Flag: "bootstrap-admin-password", Default: "", Secret: true,
			Doc:   "hotline serve: password of HOTLINE_BOOTSTRAP_ADMIN (at least 8 characters, not containing the username); give it as a file with _FILE",
			field: func(c *Config) any { return &c.Admin.BootstrapAdminPassword }},
	)
}
