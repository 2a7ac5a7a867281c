package chat

// EstimateTokens is a rough, allocation-free prompt size for quota
// reservations before the provider counts: about four characters a token,
// a few tokens of framing per message, and a flat charge per image.
func (r *Request) EstimateTokens() int {
	n := 3
	for i := range r.Messages {
		m := &r.Messages[i]
		n += 4 + (len(m.Content.Text)+3)/4
		for _, p := range m.Content.Parts {
			if p.Type == "image_url" {
				n += 765 // a high-detail 1024×1024 image on OpenAI's tiling
			} else {
				n += (len(p.Text) + 3) / 4
			}
		}
		for _, tc := range m.ToolCalls {
			n += 4 + (len(tc.Function.Name)+len(tc.Function.Arguments)+3)/4
		}
	}
	for _, t := range r.Tools {
		n += 8 + (len(t.Function.Name)+len(t.Function.Description)+len(t.Function.Parameters)+3)/4
	}
	return n
}
