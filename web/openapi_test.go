package web

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"hotline/notify/deliver"
	"hotline/notify/hub"
	"hotline/telephony"
	"hotline/ticketing"
	"hotline/ticketing/campaign"
	"hotline/ticketing/monitoring"
)

// notDocumented are the routes that serve pages, not the API.
var notDocumented = map[string]bool{"/": true, "/api/": true, "GET /liuyan": true, "GET /liuyan/progress": true, "GET /liuyan/assets/{file}": true}

func TestOpenAPIMergeRefuses(t *testing.T) {
	const a = "paths:\n  /x:\n    get: {operationId: x, responses: {\"200\": {description: ok}}}\ncomponents:\n  schemas:\n    AX: {type: object}\n"
	for _, tc := range []struct {
		name, b, want string
	}{
		{"same operation", "paths:\n  /x:\n    get: {operationId: y, responses: {}}\n", "GET /x is documented twice, in a.yaml and in b.yaml"},
		{"same schema", "components:\n  schemas:\n    AX: {type: string}\n", "components.schemas.AX is defined twice, in a.yaml and in b.yaml"},
		{"same operationId", "paths:\n  /y:\n    get: {operationId: x, responses: {}}\n", `operationId "x" is used in a.yaml and in b.yaml`},
		{"dangling ref", "paths:\n  /y:\n    get: {responses: {\"200\": {$ref: \"#/components/responses/Nope\"}}}\n", "#/components/responses/Nope"},
		{"other top-level key", "info: {title: x}\n", `b.yaml: top-level key "info"`},
		{"other component kind", "components:\n  securitySchemes:\n    k: {type: http}\n", "components.securitySchemes"},
		{"not YAML", "paths: [\n", "b.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"f/a.yaml": {Data: []byte(a)}, "f/b.yaml": {Data: []byte(tc.b)}}
			_, err := mergeOpenAPI(fsys, "f")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to say %q", err, tc.want)
			}
		})
	}
	// Different methods of one path in two files merge.
	fsys := fstest.MapFS{"f/a.yaml": {Data: []byte(a)}, "f/b.yaml": {Data: []byte("paths:\n  /x:\n    post: {operationId: px, responses: {}}\n")}}
	doc, err := mergeOpenAPI(fsys, "f")
	if err != nil {
		t.Fatal(err)
	}
	if ops := doc["paths"].(map[string]any)["/x"].(map[string]any); ops["get"] == nil || ops["post"] == nil {
		t.Fatalf("merged /x: %v", ops)
	}
}

// documentedRoutes returns the mux pattern of every operation in the merged document.
func documentedRoutes(t *testing.T) []string {
	t.Helper()
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any // a path item also holds parameters (an array) besides its operations
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var out []string
	for p, ops := range doc.Paths {
		for m, op := range ops {
			if !slices.Contains(openapiMethods, m) {
				continue
			}
			route := strings.ToUpper(m) + " " + p
			if r, ok := op.(map[string]any)["x-route"].(string); ok {
				route = r // a path the mux cannot match literally (a wildcard with a suffix)
			}
			out = append(out, route)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// registeredRoutes is every route of a server with every optional part present (TestRouteRoleMatrix keeps
// routeMatrix equal to the routes of its server; the union covers parts that test leaves out, such as notify).
func registeredRoutes(t *testing.T) []string {
	s := newServer(Deps{
		Tickets:    &Tickets{Service: &ticketing.Service{}},
		Telephony:  telephony.NewService(telephony.Options{}),
		Monitoring: monitoring.New(monitoring.Config{}),
		Campaigns:  &Campaigns{Service: &campaign.Service{}},
		Notify:     (*deliver.Service)(nil),
		Hub:        (*hub.Hub)(nil),
	})
	all := slices.Clone(s.mux.patterns)
	for p := range routeMatrix {
		all = append(all, p)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// TestOpenAPICoverage: every route is documented, every documented route exists.
func TestOpenAPICoverage(t *testing.T) {
	documented := documentedRoutes(t)
	registered := registeredRoutes(t)
	for _, r := range registered {
		if !notDocumented[r] && !slices.Contains(documented, r) {
			t.Errorf("route %q is not documented in web/openapi/*.yaml", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(registered, d) {
			t.Errorf("web/openapi documents %q: no such route", d)
		}
	}
	if len(documented) < 80 {
		t.Errorf("only %d operations documented", len(documented))
	}
}

// openapiValidator validates answers of real API calls against the merged document.
type openapiValidator struct {
	t *testing.T
	v validator.Validator
	n int
}

func newOpenAPIValidator(t *testing.T) *openapiValidator {
	t.Helper()
	raw, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s: %s", se.FieldPath, se.Reason)
			}
		}
		t.FailNow()
	}
	return &openapiValidator{t: t, v: v}
}

// check validates resp (to req) against the document and gives back its body.
func (o *openapiValidator) check(req *http.Request, resp *http.Response) []byte {
	o.t.Helper()
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		o.t.Fatal(err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if ok, errs := o.v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range errs {
			o.t.Errorf("%s %s → %d: %s: %s %v", req.Method, req.URL.Path, resp.StatusCode, e.Message, e.Reason, e.SchemaValidationErrors)
		}
	}
	o.n++
	return body
}
