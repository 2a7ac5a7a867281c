package orchestrate

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/metrics"
	"github.com/sluice-llm/sluice/shared/sqsbatch"
	"github.com/sluice-llm/sluice/shared/taskapi"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// Environment the function reads (besides the gateway's configuration).
const (
	// EnvJobsQueueURL names the jobs queue; without it async tasks run in
	// the process that accepted them (local use).
	EnvJobsQueueURL = "SLUICE_JOBS_QUEUE_URL"
	// EnvWebhookSecret is the HMAC key completion webhooks are signed with;
	// without it tasks asking for a webhook are refused.
	EnvWebhookSecret = "SLUICE_WEBHOOK_SECRET"
)

// App is the orchestrate function: the task service, its HTTP API and the
// event adapters.
type App struct {
	Service *tasks.Service
	// Handler serves the task API, and the chat API on every other path.
	Handler http.Handler
	Jobs    *Jobs
	// Queue is the jobs queue, nil when async tasks run in-process.
	Queue *SQSQueue
	Store tasks.Store

	gw  *gateway.Gateway
	log *slog.Logger
}

// Deps are clients New would otherwise make; tests pass emulator-bound ones.
type Deps struct {
	SQS   *sqs.Client
	Store tasks.Store
	// Lease overrides the task lease (tests keep it short).
	Lease time.Duration
	// Middleware wraps every model call of every task.
	Middleware []tasks.Middleware
	// Metrics receives task outcomes; nil means EMF to stdout on Lambda.
	Metrics interface{ RecordTask(*metrics.Task) }
}

// New builds the function on a gateway: tasks live in the gateway's state
// table (memory without one), async tasks go to the jobs queue when one is
// named, and completion webhooks are signed when a secret is set.
func New(ctx context.Context, gw *gateway.Gateway, cfg *config.Config, getenv func(string) string, log *slog.Logger, deps Deps) (*App, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{Store: deps.Store, gw: gw, log: log}
	if a.Store == nil {
		if gw.DynamoDB != nil {
			a.Store = tasks.NewDynamo(gw.DynamoDB, gw.Table, 0)
		} else {
			a.Store = tasks.NewMemory()
		}
	}
	runner := tasks.NewRunner(gw.Engine, tasks.RunnerOptions{Cost: gateway.Cost(cfg.Prices), Middleware: deps.Middleware})
	o := tasks.Options{Store: a.Store, Runner: runner, Quota: gw.Handler.QuotaStore(), Log: log, Lease: deps.Lease,
		Metrics: deps.Metrics}
	if o.Metrics == nil && getenv("AWS_LAMBDA_RUNTIME_API") != "" {
		o.Metrics = metrics.NewBatchEMF(os.Stdout, metrics.DefaultNamespace) // CloudWatch reads EMF from stdout
	}
	if url := getenv(EnvJobsQueueURL); url != "" {
		c := deps.SQS
		if c == nil {
			awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
			if err != nil {
				return nil, fmt.Errorf("load AWS config for the jobs queue: %w", err)
			}
			c = sqs.NewFromConfig(awsCfg)
		}
		a.Queue = NewSQSQueue(c, url)
		o.Queue = a.Queue
	}
	o.NoLocalAsync = o.Queue == nil && getenv("AWS_LAMBDA_RUNTIME_API") != ""
	if secret := getenv(EnvWebhookSecret); secret != "" {
		o.Webhooks = tasks.NewWebhooks([]byte(secret), nil)
	}
	a.Service = tasks.NewService(o)
	a.Handler = taskapi.New(a.Service, gw.Handler, cfg.Server.MaxBodyBytes, log)
	var vis Visibility
	if a.Queue != nil {
		vis = a.Queue
	}
	lease := deps.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	a.Jobs = NewJobs(a.Service, log, vis, lease)
	return a, nil
}

// Close waits for tasks running in the background.
func (a *App) Close() { a.Service.Close() }

// Poller returns a local consumer of the jobs queue, or nil without one.
func (a *App) Poller(log *slog.Logger) *sqsbatch.Poller {
	if a.Queue == nil {
		return nil
	}
	return a.Queue.poller(a.Jobs, 30*time.Second, log)
}
