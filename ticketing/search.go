package ticketing

import (
	"strings"
	"unicode"
)

// SearchQuery turns what a user typed into a tsquery over ticket_search.words (migration 0016: search_vector),
// cutting it the same way the documents are cut: a run of ASCII letters and digits is a prefix match of one
// lexeme; any other run of letters (Chinese) is the phrase of its two-character grams, or for one character a
// prefix match of the grams that start with it. Runs are ANDed. "" means nothing searchable was typed.
func SearchQuery(text string) string {
	var terms []string
	for _, run := range searchRuns(strings.ToLower(text)) {
		if len(terms) == 8 { // a long paste is not a search: the first eight runs decide
			break
		}
		rs := []rune(run)
		if isASCIIAlnum(rs[0]) {
			if len(rs) > 100 {
				rs = rs[:100]
			}
			terms = append(terms, lexeme(string(rs))+":*")
			continue
		}
		if len(rs) == 1 {
			terms = append(terms, lexeme(string(rs))+":*")
			continue
		}
		if len(rs) > 32 {
			rs = rs[:32]
		}
		grams := make([]string, 0, len(rs)-1)
		for i := 0; i+1 < len(rs); i++ {
			grams = append(grams, lexeme(string(rs[i:i+2])))
		}
		terms = append(terms, "("+strings.Join(grams, " <-> ")+")")
	}
	return strings.Join(terms, " & ")
}

// searchRuns splits text into runs as search_vector does: ASCII letters and digits, or other letters and marks;
// spaces, punctuation and symbols separate.
func searchRuns(text string) []string {
	var runs []string
	start, ascii := -1, false
	flush := func(i int) {
		if start >= 0 {
			runs = append(runs, text[start:i])
			start = -1
		}
	}
	for i, r := range text {
		switch {
		case isASCIIAlnum(r):
			if start >= 0 && !ascii {
				flush(i)
			}
			if start < 0 {
				start, ascii = i, true
			}
		case r > unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsMark(r)):
			if start >= 0 && ascii {
				flush(i)
			}
			if start < 0 {
				start, ascii = i, false
			}
		default:
			flush(i)
		}
	}
	flush(len(text))
	return runs
}

func isASCIIAlnum(r rune) bool {
	return r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r))
}

// lexeme quotes a tsquery operand (the text form: backslash and quote escaped).
func lexeme(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", "''") + "'"
}
