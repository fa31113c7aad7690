package calendar

import "strconv"

// With returns a calendar whose years covered by upd come from upd alone and every other year from c: an uploaded
// year replaces that year of the base (a corrected notice), and adds years the base does not have.
func (c *Calendar) With(upd *Calendar) *Calendar {
	out := &Calendar{off: map[string]string{}, makeup: map[string]string{}, from: min(c.from, upd.from), to: max(c.to, upd.to)}
	covered := func(date string) bool {
		y, err := strconv.Atoi(date[:4])
		return err == nil && y >= upd.from && y <= upd.to
	}
	for d, n := range c.off {
		if !covered(d) {
			out.off[d] = n
		}
	}
	for d, n := range c.makeup {
		if !covered(d) {
			out.makeup[d] = n
		}
	}
	for d, n := range upd.off {
		out.off[d] = n
	}
	for d, n := range upd.makeup {
		out.makeup[d] = n
	}
	return out
}
