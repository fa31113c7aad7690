package monitoring

// LeadOpener opens verification tickets; set once the ticketing service is wired (SetLeadOpener).
type LeadOpener interface{}
