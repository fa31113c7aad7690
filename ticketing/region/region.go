// Package region knows Hunan's administrative divisions down to township (乡镇街道), from the National Bureau
// of Statistics' 2023 codes embedded in the binary: code → name, parent and level, for validation, display
// and routing. The data is read once, on first use, and never changes while the process runs.
package region

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"fmt"
	"sort"
	"strings"
	"sync"
)

//go:embed data/hunan_regions.csv
var regionsCSV []byte

//go:embed data/hunan_townships.csv
var townshipsCSV []byte

// Level of a division.
type Level string

const (
	LevelProvince   Level = "province"
	LevelPrefecture Level = "prefecture" // 市州
	LevelCounty     Level = "county"     // 县市区
	LevelTownship   Level = "township"   // 乡镇街道
)

// Region is one division. Codes are 6 digits down to county, 9 digits for townships.
type Region struct {
	Code            string
	Name            string
	ParentCode      string
	Level           Level
	StatisticalOnly bool   // a functional zone in the NBS codes that is not a GB/T 2260 division
	Kind            string // for townships: 街道, 镇, 乡 or 类似乡级单位
}

var (
	once     sync.Once
	byCode   map[string]*Region
	ordered  []*Region
	children map[string][]*Region
	loadErr  error
)

func load() {
	byCode = map[string]*Region{}
	children = map[string][]*Region{}
	read := func(data []byte, f func(rec []string) *Region) {
		r := csv.NewReader(bytes.NewReader(data))
		recs, err := r.ReadAll()
		if err != nil {
			loadErr = err
			return
		}
		for _, rec := range recs[1:] {
			reg := f(rec)
			byCode[reg.Code] = reg
			ordered = append(ordered, reg)
			if reg.ParentCode != "" {
				children[reg.ParentCode] = append(children[reg.ParentCode], reg)
			}
		}
	}
	read(regionsCSV, func(rec []string) *Region {
		return &Region{Code: rec[0], Name: rec[1], ParentCode: rec[2], Level: Level(rec[3]), StatisticalOnly: rec[4] == "true"}
	})
	read(townshipsCSV, func(rec []string) *Region {
		return &Region{Code: rec[0], Name: rec[1], ParentCode: rec[2], Level: LevelTownship, Kind: rec[3]}
	})
	if loadErr != nil {
		panic(fmt.Sprintf("embedded region data: %v", loadErr)) // the data is part of the binary: a bad file is a build defect
	}
}

// Lookup returns the division with that code.
func Lookup(code string) (Region, bool) {
	once.Do(load)
	r, ok := byCode[code]
	if !ok {
		return Region{}, false
	}
	return *r, true
}

// All returns every division, provinces first, in file order.
func All() []Region {
	once.Do(load)
	out := make([]Region, len(ordered))
	for i, r := range ordered {
		out[i] = *r
	}
	return out
}

// Children returns the divisions directly under code, ordered by code.
func Children(code string) []Region {
	once.Do(load)
	var out []Region
	for _, r := range children[code] {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out
}

// County returns the county-level code a code belongs to (itself for a county, the first six digits for a
// township), or "" for a province or prefecture code.
func County(code string) string {
	if len(code) == 9 {
		code = code[:6]
	}
	if r, ok := Lookup(code); ok && r.Level == LevelCounty {
		return code
	}
	return ""
}

// Prefecture returns the 市州 code a code belongs to, or "".
func Prefecture(code string) string {
	if len(code) < 6 {
		return ""
	}
	p := code[:4] + "00"
	if r, ok := Lookup(p); ok && r.Level == LevelPrefecture {
		return p
	}
	return ""
}

// FullName joins the names from the prefecture down, e.g. 益阳市赫山区 for 430903.
func FullName(code string) string {
	var parts []string
	for c := code; c != ""; {
		r, ok := Lookup(c)
		if !ok || r.Level == LevelProvince {
			break
		}
		parts = append([]string{r.Name}, parts...)
		c = r.ParentCode
	}
	return strings.Join(parts, "")
}
