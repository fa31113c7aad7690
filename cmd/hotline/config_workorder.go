package main

import "errors"

// Settings of the whole work order (issue 11): co-handling (协办). Fields live in TicketingConfig.
func init() {
	settings = append(settings,
		setting{Env: "HOTLINE_SLA_CO_OPINION_DAYS", Flag: "sla-co-opinion-days", Default: "2", Doc: "working days a co-unit (协办单位) has for its opinion after dispatch",
			field: func(c *Config) any { return &c.Ticketing.CoOpinionDays }, check: positive("HOTLINE_SLA_CO_OPINION_DAYS", func(c *Config) int { return c.Ticketing.CoOpinionDays })},
		setting{Env: "HOTLINE_CO_OPINION_POLICY", Flag: "co-opinion-policy", Default: "block", Doc: "while a co-unit's opinion is outstanding the lead unit's reply is refused (block) or goes with the missing opinions recorded (warn)",
			field: func(c *Config) any { return &c.Ticketing.CoOpinionPolicy }, check: func(c *Config) error {
				if c.Ticketing.CoOpinionPolicy != "block" && c.Ticketing.CoOpinionPolicy != "warn" {
					return errors.New("HOTLINE_CO_OPINION_POLICY: block or warn")
				}
				return nil
			}},
	)
}
