package monitoring

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"hotline/deploy/testenv"
	"hotline/ticketing/monitoring/idcard"
	"hotline/ticketing/monitoring/pii"
	"hotline/ticketing/org"
)

func TestMain(m *testing.M) { os.Exit(testenv.MainNoLeaks(m)) }

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc   *Service
	db    *pgxpool.Pool
	clock *testClock
	box   *pii.Box
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	db := testenv.DB(t)
	key, _ := pii.ParseKey(pii.NewKey())
	box, err := pii.New(key)
	if err != nil {
		t.Fatal(err)
	}
	clk := &testClock{t: time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)}
	return &fixture{svc: New(Config{DB: db, Box: box, Now: clk.Now}), db: db, clock: clk, box: box}
}

var (
	staff    = org.Actor{UserID: 0, Username: "heshan1", Name: "赫山区承办人", Role: org.RoleStaff}
	revealer = org.Actor{UserID: 0, Username: "auditor", Name: "审核员", Role: org.RoleStaff,
		Permissions: []org.Permission{org.PermRevealPII}}
)

// sampleInput is a valid household of 赫山区 (430903), 龙光桥街道 or whatever township comes first.
func sampleInput(number, phone1 string) HouseholdInput {
	return HouseholdInput{
		Number: number, CountyCode: "430903", TownshipCode: firstTownship("430903"), Village: "新华村", Group: "3组",
		MonitoringType: "边缘易致贫户", RiskTypes: []string{"因病", "因学"}, CadreName: "周敏", CadrePhone: "13907371234",
		Members: []MemberInput{
			{Name: "刘建国", Relation: "户主", IDNumber: "43090319650505123X", Health: "大病", Labour: "弱劳动力或半劳动力", Phone: phone1},
			{Name: "王秀英", Relation: "配偶", IDNumber: mkID("43090319680303002"), Health: "健康"},
		},
		Phones: []PhoneInput{{Number: "0737-4221234"}},
	}
}

func mkID(first17 string) string {
	return first17 + string(idcard.CheckChar(first17))
}

func ctx() context.Context { return context.Background() }

func firstTownship(county string) string {
	for _, r := range demoTownships() {
		if r.ParentCode == county {
			return r.Code
		}
	}
	panic("no township in " + county)
}
