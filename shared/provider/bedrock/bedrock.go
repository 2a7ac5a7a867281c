// Package bedrock adapts Amazon Bedrock's Converse API (ConverseStream) to
// the gateway's provider interface, translating OpenAI chat requests into
// Converse messages and Converse stream events back into OpenAI deltas.
package bedrock

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"

	"github.com/sluice-llm/sluice/shared/provider"
)

// Options configures a Bedrock provider.
type Options struct {
	// Name is the provider name used in errors and logs; default "bedrock".
	Name string
	// Region is required unless the AWS config (env, shared files) supplies one.
	Region string
	// Endpoint overrides the base endpoint (tests, VPC endpoints).
	Endpoint string
	// HTTPClient replaces the SDK's HTTP client (tests).
	HTTPClient *http.Client
	// Credentials replaces the default credential chain (tests).
	Credentials aws.CredentialsProvider
	// DefaultMaxTokens caps output when the request sets no limit, because
	// Converse otherwise applies a small model-specific default; default 4096.
	DefaultMaxTokens int
}

// DefaultMaxTokens is the output cap used when neither the request nor the
// options set one.
const DefaultMaxTokens = 4096

// Provider is a Bedrock upstream.
type Provider struct {
	name      string
	client    *bedrockruntime.Client
	maxTokens int
}

// New loads the AWS configuration (environment, shared config, default
// credential chain) with the options applied and builds the client.
func New(ctx context.Context, o Options) (*Provider, error) {
	if o.Name == "" {
		o.Name = "bedrock"
	}
	if o.DefaultMaxTokens <= 0 {
		o.DefaultMaxTokens = DefaultMaxTokens
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("bedrock %s: endpoint %q must be an absolute http(s) URL", o.Name, o.Endpoint)
		}
	}
	// The gateway owns retries and fallback; SDK retries would multiply
	// attempts and hide throttling from it.
	noRetry := func() aws.Retryer { return aws.NopRetryer{} }
	lo := []func(*config.LoadOptions) error{config.WithRetryer(noRetry)}
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if o.Credentials != nil {
		lo = append(lo, config.WithCredentialsProvider(o.Credentials))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return nil, fmt.Errorf("bedrock %s: load AWS config: %w", o.Name, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("bedrock %s: region is required (set region or AWS_REGION)", o.Name)
	}
	client := bedrockruntime.NewFromConfig(cfg, func(bo *bedrockruntime.Options) {
		if o.Endpoint != "" {
			bo.BaseEndpoint = aws.String(o.Endpoint)
		}
		// Set on the client rather than through LoadDefaultConfig, which
		// rejects a plain *http.Client when AWS_CA_BUNDLE is set: a caller's
		// client owns its TLS settings.
		if o.HTTPClient != nil {
			bo.HTTPClient = o.HTTPClient
		}
		bo.HTTPClient = ownBodyClient{bo.HTTPClient}
		// Set again at client level: AWS_MAX_ATTEMPTS or a shared-config
		// max_attempts would otherwise wrap the retryer back into retrying.
		bo.Retryer = aws.NopRetryer{}
		bo.RetryMaxAttempts = 0
	})
	return &Provider{name: o.Name, client: client, maxTokens: o.DefaultMaxTokens}, nil
}

// ownBodyClient hands the transport a request body the SDK cannot close
// under it. The SDK's HTTP handler closes the request body as soon as Do
// returns, but net/http's write loop may still be inside Request.write: after
// copying Content-Length bytes (which, sent straight to the socket, already
// let the server answer) it reads the body once more to check for extra
// bytes. The SDK's closed body then answers WriteTo with io.EOF, which
// io.Copy passes on as an error, and the write loop closes the connection
// while the response stream is still being read ("use of closed network
// connection" mid-stream). A body of our own ends that race. It also bounds
// the answer of a call that asks for it (limitResponse).
type ownBodyClient struct {
	next bedrockruntime.HTTPClient
}

func (c ownBodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		resp, err := c.next.Do(req)
		limitResponse(req, resp)
		return resp, err
	}
	// The SDK serializes the whole payload in memory anyway (it signs its
	// hash), so this costs one copy of the JSON.
	n := req.ContentLength
	if n < 0 || n > math.MaxInt32 {
		n = 0
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	_, err := buf.ReadFrom(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	b := buf.Bytes()
	req.Body = io.NopCloser(bytes.NewReader(b))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	resp, err := c.next.Do(req)
	limitResponse(req, resp)
	return resp, err
}

// Name implements provider.Provider.
func (p *Provider) Name() string { return p.name }

// Stream implements provider.Provider.
func (p *Provider) Stream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	in, pl, err := p.buildInput(req)
	if err != nil {
		return nil, err
	}
	out, err := p.client.ConverseStream(ctx, in)
	if err != nil {
		return nil, p.classify(err)
	}
	es := out.GetStream()
	return &stream{ctx: ctx, name: p.name, model: req.Model, es: es, events: es.Events(), jsonTool: pl.jsonTool}, nil
}

// ContinuesAssistant implements provider.Continuer: Converse continues a
// trailing assistant message, as the Anthropic models on Bedrock do.
func (p *Provider) ContinuesAssistant() bool { return true }
