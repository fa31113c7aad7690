package ticketing

// WarnCalendar is the sweeper's calendar check, for tests.
func (s *Service) WarnCalendar() { s.warnCalendar() }
