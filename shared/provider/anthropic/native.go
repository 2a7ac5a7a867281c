package anthropic

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/sluice-llm/sluice/shared/chat"
)

// A request that came in through the Messages door carries the client's
// own body (chat.Native). Sent as is, with only model and stream set by
// sluice, it keeps everything the chat translation cannot carry. The
// engine's continuations and askToContinue are new requests without it,
// so they are translated as always.

// nativeBody is the client's Messages request for model. stream is false
// for count_tokens, which takes no such member.
func nativeBody(n *chat.Native, model string, stream bool) []byte {
	m, _ := json.Marshal(model)
	b := make([]byte, 0, len(n.Members)+len(m)+32)
	b = append(b, `{"model":`...)
	b = append(b, m...)
	if stream {
		b = append(b, `,"stream":true`...)
	}
	if len(n.Members) > 0 {
		b = append(b, ',')
		b = append(b, n.Members...)
	}
	return append(b, '}')
}

// nativeHeaders sets the client's API headers (anthropic-beta) on hr. A
// beta the configuration also names is sent once, with both lists joined.
func (p *Provider) nativeHeaders(hr *http.Request, n *chat.Native) map[string]string {
	headers := p.headers
	for k, vs := range n.Header {
		v := strings.Join(vs, ",")
		if own, ok := lookup(p.headers, k); ok {
			merged := make(map[string]string, len(p.headers))
			for hk, hv := range p.headers {
				if !strings.EqualFold(hk, k) {
					merged[hk] = hv
				}
			}
			v = own + "," + v
			headers = merged
		}
		hr.Header.Set(k, v)
	}
	return headers
}

func lookup(h map[string]string, key string) (string, bool) {
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}
