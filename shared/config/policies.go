package config

import (
	"fmt"
	"regexp"
	"time"
)

// Features are a route's optional behaviours, declared beside its targets:
//
//	models:
//	  chat:
//	    targets: [openai/gpt-4o-mini]
//	    cache:  {ttl: 1h}
//	    guard:  {block: [{name: secrets, pattern: '(?i)api[_-]?key'}], redact: [email, phone, card]}
//	    canary: {target: openai/gpt-4.1-mini, percent: 10, sticky: tenant}
//	    shadow: {target: anthropic/claude-3-5-haiku-latest, percent: 25}
type Features struct {
	Cache  *CacheConfig  `yaml:"cache"`
	Guard  *GuardConfig  `yaml:"guard"`
	Canary *CanaryConfig `yaml:"canary"`
	Shadow *ShadowConfig `yaml:"shadow"`
}

// CacheConfig turns on the response cache for deterministic requests
// (temperature 0, or a seed).
type CacheConfig struct {
	TTL time.Duration `yaml:"ttl"`
	// Shared lets tenants share cached answers; by default each tenant's
	// are its own.
	Shared        bool          `yaml:"shared"`
	LookupTimeout time.Duration `yaml:"lookup_timeout"`
}

// GuardConfig declares a route's trust-and-safety filters.
type GuardConfig struct {
	// Block refuses requests whose text matches a rule (400 content_blocked).
	Block []BlockRule `yaml:"block"`
	// Redact replaces these kinds of personal data in the output: email,
	// phone, card.
	Redact []string `yaml:"redact"`
}

// BlockRule is one deny rule: a regular expression, or a list of words and
// phrases matched whole and ignoring case.
type BlockRule struct {
	Name    string   `yaml:"name"`
	Pattern string   `yaml:"pattern"`
	Words   []string `yaml:"words"`
}

// CanaryConfig sends a share of callers to a candidate target.
type CanaryConfig struct {
	Target  *Target `yaml:"target"`
	Percent float64 `yaml:"percent"`
	Sticky  string  `yaml:"sticky"` // tenant (default) or key
}

// ShadowConfig runs a candidate target beside the route on a share of
// requests, off the critical path.
type ShadowConfig struct {
	Target    *Target       `yaml:"target"`
	Percent   float64       `yaml:"percent"`
	Timeout   time.Duration `yaml:"timeout"`
	StoreText bool          `yaml:"store_text"`
	TTL       time.Duration `yaml:"ttl"`
}

// Kinds of personal data the built-in redactor knows.
var redactKinds = map[string]bool{"email": true, "phone": true, "card": true}

// validateFeatures checks one route's features; f is "models.<alias>".
func (c *Config) validateFeatures(f string, m Model, bad func(string, string, ...any)) {
	if cc := m.Cache; cc != nil {
		if cc.TTL <= 0 || cc.TTL > 30*24*time.Hour {
			bad(f+".cache.ttl", "must be between 1s and 720h (30 days), not %v", cc.TTL)
		}
		if cc.LookupTimeout < 0 {
			bad(f+".cache.lookup_timeout", "must not be negative")
		}
	}
	if g := m.Guard; g != nil {
		names := map[string]bool{}
		for i, r := range g.Block {
			rf := fmt.Sprintf("%s.guard.block[%d]", f, i)
			switch {
			case r.Name == "":
				bad(rf+".name", "is required: it names the rule in errors and logs")
			case names[r.Name]:
				bad(rf+".name", "%q is used by another rule of this route", r.Name)
			}
			names[r.Name] = true
			switch {
			case (r.Pattern == "") == (len(r.Words) == 0):
				bad(rf, "needs exactly one of pattern and words")
			case r.Pattern != "":
				if _, err := regexp.Compile(r.Pattern); err != nil {
					bad(rf+".pattern", "is not a valid regular expression: %v", err)
				}
			default:
				for j, w := range r.Words {
					if len(w) == 0 || len(w) > 200 {
						bad(fmt.Sprintf("%s.words[%d]", rf, j), "must be 1 to 200 characters")
					}
				}
			}
		}
		seen := map[string]bool{}
		for i, k := range g.Redact {
			kf := fmt.Sprintf("%s.guard.redact[%d]", f, i)
			if !redactKinds[k] {
				bad(kf, "must be email, phone or card, not %q", k)
			} else if seen[k] {
				bad(kf, "%q is listed twice", k)
			}
			seen[k] = true
		}
		if len(g.Block) == 0 && len(g.Redact) == 0 {
			bad(f+".guard", "declares no filter: add block rules or redact kinds, or remove it")
		}
	}
	used := map[string]bool{}
	for _, t := range m.Targets {
		used[t.Provider+"/"+t.Model] = true
	}
	if cn := m.Canary; cn != nil {
		c.validateCandidate(f+".canary", cn.Target, cn.Percent, bad)
		if cn.Target != nil && len(m.Targets) > 0 && cn.Target.Provider+"/"+cn.Target.Model == m.Targets[0].Provider+"/"+m.Targets[0].Model {
			bad(f+".canary.target", "is already the route's first target")
		}
		if cn.Sticky != "" && cn.Sticky != "tenant" && cn.Sticky != "key" {
			bad(f+".canary.sticky", "must be tenant or key, not %q", cn.Sticky)
		}
	}
	if s := m.Shadow; s != nil {
		c.validateCandidate(f+".shadow", s.Target, s.Percent, bad)
		if s.Target != nil {
			key := s.Target.Provider + "/" + s.Target.Model
			if used[key] || (m.Canary != nil && m.Canary.Target != nil && key == m.Canary.Target.Provider+"/"+m.Canary.Target.Model) {
				// Its failures would count against a target the route serves with.
				bad(f+".shadow.target", "%s already serves this route; a shadow must be a target the route does not call", key)
			}
		}
		if s.Timeout < 0 {
			bad(f+".shadow.timeout", "must not be negative")
		}
		if s.TTL < 0 {
			bad(f+".shadow.ttl", "must not be negative")
		}
	}
}

// validateCandidate checks a canary's or shadow's target and share.
func (c *Config) validateCandidate(f string, t *Target, percent float64, bad func(string, string, ...any)) {
	switch {
	case t == nil:
		bad(f+".target", "is required (provider/model)")
	case t.Model == "":
		bad(f+".target.model", "is required")
	default:
		if _, ok := c.Providers[t.Provider]; !ok {
			bad(f+".target.provider", "unknown provider %q", t.Provider)
		}
		if t.ContextWindow < 0 {
			bad(f+".target.context_window", "must not be negative")
		}
	}
	if percent <= 0 || percent > 100 {
		bad(f+".percent", "must be more than 0 and at most 100, not %v", percent)
	}
}
