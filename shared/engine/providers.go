package engine

import "github.com/sluice-llm/sluice/shared/provider"

// Provider returns a configured provider by name, so other engines built
// on the same resilience state (embeddings) reach the same clients.
func (e *Engine) Provider(name string) (provider.Provider, bool) {
	p, ok := e.providers[name]
	return p, ok
}
