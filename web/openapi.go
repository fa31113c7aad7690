package web

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// The OpenAPI 3.1 document of the whole HTTP API is assembled from fragment files, web/openapi/*.yaml, one per
// area, so that people adding routes in parallel each edit their own file. A fragment holds only `paths:` and
// optionally `components:` (schemas, parameters, responses); the head of the document (version, info, security
// schemes) is here. Two fragments may document different methods of one path, but never the same operation, nor a
// component of the same name: the merge refuses, naming both files. Every $ref must name a component of the
// merged document. TestOpenAPICoverage keeps the paths equal to the routes registered.

//go:embed openapi/*.yaml
var openapiFiles embed.FS

// openapiHead is what every fragment shares.
var openapiHead = map[string]any{
	"openapi": "3.1.0",
	"info": map[string]any{
		"title":   "hotline API",
		"version": "v1",
		"description": "The JSON API of hotline (12345 乡村振兴专席): tickets, calls, monitored households, campaigns, " +
			"notifications, the public channels (网上留言, Open311 GeoReport v2). Machines authenticate with a bearer token " +
			"from POST /api/v1/tokens; the console uses a session cookie plus the X-CSRF-Token header on every " +
			"state-changing request. Every error is one JSON shape (CoreError) with a stable code.",
	},
	"security": []any{map[string]any{"bearer": []any{}}, map[string]any{"session": []any{}}},
}

var openapiSecuritySchemes = map[string]any{
	"bearer":  map[string]any{"type": "http", "scheme": "bearer", "description": "a token from POST /api/v1/tokens"},
	"session": map[string]any{"type": "apiKey", "in": "cookie", "name": SessionCookie, "description": "the console's session; state-changing requests also need X-CSRF-Token"},
}

// openapiComponentKinds are the components a fragment may define.
var openapiComponentKinds = []string{"schemas", "parameters", "responses"}

var openapiMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// mergeOpenAPI reads every *.yaml file of dir in fsys (in name order) and returns the merged document.
func mergeOpenAPI(fsys fs.FS, dir string) (map[string]any, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("openapi fragments: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("openapi fragments: no %s/*.yaml", dir)
	}
	sort.Strings(names)
	paths := map[string]any{}
	opFile := map[string]string{} // "get /x" → file
	idFile := map[string]string{} // operationId → file
	components := map[string]any{"securitySchemes": openapiSecuritySchemes}
	compFile := map[string]string{} // "schemas/X" → file
	for _, name := range names {
		raw, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("openapi fragment %s: %w", name, err)
		}
		var frag map[string]any
		if err := yaml.Unmarshal(raw, &frag); err != nil {
			return nil, fmt.Errorf("openapi fragment %s: %w", name, err)
		}
		frag, _ = normalizeYAML(frag).(map[string]any)
		file := path.Base(name)
		for k := range frag {
			if k != "paths" && k != "components" {
				return nil, fmt.Errorf("openapi fragment %s: top-level key %q: a fragment holds only paths and components", file, k)
			}
		}
		fragPaths, ok := frag["paths"].(map[string]any)
		if !ok && frag["paths"] != nil {
			return nil, fmt.Errorf("openapi fragment %s: paths is not a mapping", file)
		}
		for p, item := range fragPaths {
			ops, ok := item.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("openapi fragment %s: path %s is not a mapping", file, p)
			}
			merged, _ := paths[p].(map[string]any)
			if merged == nil {
				merged = map[string]any{}
				paths[p] = merged
			}
			for m, op := range ops {
				key := m + " " + p
				if prev, dup := opFile[key]; dup {
					return nil, fmt.Errorf("openapi: %s %s is documented twice, in %s and in %s", strings.ToUpper(m), p, prev, file)
				}
				if slices.Contains(openapiMethods, m) {
					opFile[key] = file
					if o, ok := op.(map[string]any); ok {
						if id, _ := o["operationId"].(string); id != "" {
							if prev, dup := idFile[id]; dup {
								return nil, fmt.Errorf("openapi: operationId %q is used in %s and in %s", id, prev, file)
							}
							idFile[id] = file
						}
					}
				} else if m == "parameters" {
					opFile[key] = file
				} else {
					return nil, fmt.Errorf("openapi fragment %s: path %s: unknown key %q", file, p, m)
				}
				merged[m] = op
			}
		}
		comps, ok := frag["components"].(map[string]any)
		if !ok && frag["components"] != nil {
			return nil, fmt.Errorf("openapi fragment %s: components is not a mapping", file)
		}
		for kind, defs := range comps {
			if !slices.Contains(openapiComponentKinds, kind) {
				return nil, fmt.Errorf("openapi fragment %s: components.%s: a fragment may define only %v", file, kind, openapiComponentKinds)
			}
			defMap, ok := defs.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("openapi fragment %s: components.%s is not a mapping", file, kind)
			}
			all, _ := components[kind].(map[string]any)
			if all == nil {
				all = map[string]any{}
				components[kind] = all
			}
			for n, def := range defMap {
				key := kind + "/" + n
				if prev, dup := compFile[key]; dup {
					return nil, fmt.Errorf("openapi: components.%s.%s is defined twice, in %s and in %s (prefix names with your area)", kind, n, prev, file)
				}
				compFile[key] = file
				all[n] = def
			}
		}
	}
	doc := map[string]any{"paths": paths, "components": components}
	for k, v := range openapiHead {
		doc[k] = v
	}
	var dangling []string
	walkRefs(doc, func(ref string) {
		kind, name, ok := strings.Cut(strings.TrimPrefix(ref, "#/components/"), "/")
		if !strings.HasPrefix(ref, "#/components/") || !ok {
			dangling = append(dangling, ref)
			return
		}
		if defs, _ := components[kind].(map[string]any); defs[name] == nil {
			dangling = append(dangling, ref)
		}
	})
	if len(dangling) > 0 {
		slices.Sort(dangling)
		return nil, fmt.Errorf("openapi: $ref to components no fragment defines: %s", strings.Join(slices.Compact(dangling), ", "))
	}
	return doc, nil
}

// normalizeYAML turns what yaml.v3 decodes into what encoding/json encodes: mappings with non-string keys (a
// response code written 200 rather than "200") become map[string]any.
func normalizeYAML(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeYAML(e)
		}
		return x
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalizeYAML(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = normalizeYAML(e)
		}
	}
	return v
}

func walkRefs(v any, f func(string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && k == "$ref" {
				f(s)
				continue
			}
			walkRefs(e, f)
		}
	case []any:
		for _, e := range x {
			walkRefs(e, f)
		}
	}
}

// openapiDoc is the merged document of the embedded fragments, built once.
var openapiDoc = sync.OnceValues(func() ([]byte, error) {
	doc, err := mergeOpenAPI(openapiFiles, "openapi")
	if err != nil {
		return nil, err
	}
	return json.MarshalIndent(doc, "", " ")
})

// OpenAPI returns the merged OpenAPI document (JSON).
func OpenAPI() ([]byte, error) { return openapiDoc() }

func (s *Server) docRoutes() {
	s.mux.HandleFunc("GET /api/v1/openapi.json", s.api(s.openapiJSON))
	s.mux.HandleFunc("GET /api/v1/docs", s.api(s.openapiPage))
}

func (s *Server) openapiJSON(w http.ResponseWriter, r *http.Request) error {
	doc, err := openapiDoc()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(doc)
	return nil
}

// docOperation is one row of the integrators' page.
type docOperation struct {
	Method, Path, Summary, Description, Auth string
	Params                                   []string
}

var docPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — 接口文档</title>
<style>
body{font:14px/1.5 system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:0 auto;max-width:1000px;padding:16px;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2em}.op{border:1px solid #e3e3e3;border-radius:6px;margin:8px 0;padding:8px 12px}
.m{display:inline-block;min-width:60px;font-weight:bold;font-family:monospace}.get{color:#1a7f37}.post{color:#0969da}
.put{color:#9a6700}.delete{color:#cf222e}code{background:#f4f4f4;padding:1px 4px;border-radius:3px}.auth{color:#666;font-size:12px}
p.d{white-space:pre-wrap;margin:4px 0}
</style></head><body>
<h1>{{.Title}} 接口文档 (OpenAPI {{.Version}})</h1>
<p>{{.Description}}</p>
<p>机器可读文档：<a href="/api/v1/openapi.json">/api/v1/openapi.json</a>（OpenAPI 3.1，可导入任何 OpenAPI 工具）。</p>
{{range .Groups}}<h2 id="{{.Tag}}">{{.Tag}}</h2>
{{range .Ops}}<div class="op"><span class="m {{.Method}}">{{.Method}}</span> <code>{{.Path}}</code> <span class="auth">{{.Auth}}</span>
<div><b>{{.Summary}}</b></div>{{if .Description}}<p class="d">{{.Description}}</p>{{end}}
{{if .Params}}<div>参数：{{range .Params}}<code>{{.}}</code> {{end}}</div>{{end}}</div>
{{end}}{{end}}</body></html>`))

type docGroup struct {
	Tag string
	Ops []docOperation
}

// openapiPage renders the document as one plain page for integrators (no script: it works on an intranet).
func (s *Server) openapiPage(w http.ResponseWriter, r *http.Request) error {
	raw, err := openapiDoc()
	if err != nil {
		return err
	}
	var doc struct {
		Info  struct{ Title, Description string }
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("openapi page: %w", err)
	}
	groups := map[string][]docOperation{}
	for p, item := range doc.Paths {
		for m, rawOp := range item {
			if !slices.Contains(openapiMethods, m) {
				continue
			}
			var op struct {
				Summary, Description string
				Tags                 []string
				Security             *[]map[string]any
				Parameters           []struct{ Name, In string }
			}
			if err := json.Unmarshal(rawOp, &op); err != nil {
				return fmt.Errorf("openapi page: %s %s: %w", m, p, err)
			}
			tag := "其他"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			auth := "需登录（bearer 或会话）"
			if op.Security != nil && len(*op.Security) == 0 {
				auth = "公开"
			}
			d := docOperation{Method: m, Path: p, Summary: op.Summary, Description: op.Description, Auth: auth}
			for _, prm := range op.Parameters {
				d.Params = append(d.Params, prm.In+":"+prm.Name)
			}
			groups[tag] = append(groups[tag], d)
		}
	}
	var out []docGroup
	for tag, ops := range groups {
		sort.Slice(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return slices.Index(openapiMethods, ops[i].Method) < slices.Index(openapiMethods, ops[j].Method)
		})
		out = append(out, docGroup{Tag: tag, Ops: ops})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	var buf bytes.Buffer
	if err := docPage.Execute(&buf, map[string]any{"Title": doc.Info.Title, "Description": doc.Info.Description,
		"Version": openapiHead["openapi"], "Groups": out}); err != nil {
		return fmt.Errorf("openapi page: %w", err)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(buf.Bytes())
	return nil
}
