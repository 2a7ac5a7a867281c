// Command sluicectl is the operator's tool for sluice's shared state in
// DynamoDB: tenants, API keys, quotas, usage and circuit breakers. It talks
// to the table named by -table or $SLUICE_TABLE, on AWS or on whatever
// AWS_ENDPOINT_URL points at (moto, LocalStack).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sluice-llm/sluice/shared/breaker"
	"github.com/sluice-llm/sluice/shared/ddb"
	"github.com/sluice-llm/sluice/shared/quota"
	"github.com/sluice-llm/sluice/shared/tenant"
)

const usage = `usage: sluicectl [-table NAME] COMMAND ...

  init                                   create the state table if missing (dev and emulators)
  tenant create ID [-name N] [-tz ZONE] [quota flags]
  tenant show ID                         profile, quotas and usage per window
  tenant list
  tenant disable ID | tenant enable ID
  tenant set-quota ID [quota flags]      flags not given keep their value
  tenant set-tz ID ZONE                  IANA zone, e.g. Asia/Tokyo
  key create TENANT                      prints the new key once
  key list TENANT
  key disable HASH | key enable HASH
  usage TENANT
  breaker list
  breaker open KEY | breaker close KEY   KEY is provider/model
  task show ID                           status, attempts (model versions included) and result
  task replay ID --target provider/model [-config FILE] [-json]
                                         re-run a stored task on another model; both results side by side
  shadow list ROUTE [-n N]               a route's shadow runs, newest first
  canary which ROUTE TENANT              the arm a tenant is on (for a percentage)

quota flags: -rpm -tpm -tpd -tpmo (requests/tokens per minute, tokens per day/month),
             -cost-day -cost-month (USD); 0 means unlimited
`

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "sluicectl:", err)
		if errors.Is(err, errUsage) {
			fmt.Fprint(os.Stderr, usage)
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("bad usage")

type ctl struct {
	client  *dynamodb.Client
	table   string
	tenants tenant.Store
	quotas  quota.Store
	out     io.Writer
	now     func() time.Time
}

func run(ctx context.Context, args []string, out io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("sluicectl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	table := fs.String("table", getenv("SLUICE_TABLE"), "DynamoDB table")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	args = fs.Args()
	if len(args) == 0 {
		return errUsage
	}
	if *table == "" {
		return errors.New("no table: pass -table or set SLUICE_TABLE")
	}
	client, err := ddb.NewClient(ctx)
	if err != nil {
		return err
	}
	c := &ctl{client: client, table: *table, tenants: tenant.NewDynamo(client, *table),
		quotas: quota.NewDynamo(client, *table), out: out, now: time.Now}
	switch args[0] {
	case "init":
		if err := ddb.CreateTable(ctx, client, *table); err != nil {
			return err
		}
		fmt.Fprintf(out, "table %s is ready\n", *table)
		return nil
	case "tenant":
		return c.tenant(ctx, args[1:])
	case "key":
		return c.key(ctx, args[1:])
	case "usage":
		if len(args) != 2 {
			return errUsage
		}
		return c.usage(ctx, args[1])
	case "breaker":
		return c.breaker(ctx, args[1:])
	case "task":
		return c.task(ctx, args[1:], getenv)
	case "shadow", "canary":
		return c.policies(ctx, args) // shadow.go
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// quotaFlags binds the quota flags onto l; only flags given change it.
func quotaFlags(fs *flag.FlagSet, l *quota.Limits) func() {
	rpm := fs.Int64("rpm", l.RequestsPerMinute, "requests per minute")
	tpm := fs.Int64("tpm", l.TokensPerMinute, "tokens per minute")
	tpd := fs.Int64("tpd", l.TokensPerDay, "tokens per day")
	tpmo := fs.Int64("tpmo", l.TokensPerMonth, "tokens per month")
	costDay := fs.Float64("cost-day", float64(l.CostPerDayMicros)/1e6, "USD per day")
	costMonth := fs.Float64("cost-month", float64(l.CostPerMonthMicros)/1e6, "USD per month")
	return func() {
		*l = quota.Limits{RequestsPerMinute: *rpm, TokensPerMinute: *tpm, TokensPerDay: *tpd, TokensPerMonth: *tpmo,
			CostPerDayMicros: int64(*costDay * 1e6), CostPerMonthMicros: int64(*costMonth * 1e6)}
	}
}

// parse parses flags that may follow positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %v", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (c *ctl) tenant(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	fs := flag.NewFlagSet("tenant", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch args[0] {
	case "create":
		var t tenant.Tenant
		name := fs.String("name", "", "display name")
		tz := fs.String("tz", "UTC", "IANA time zone for quota windows")
		apply := quotaFlags(fs, &t.Limits)
		pos, err := parse(fs, args[1:])
		if err != nil || len(pos) != 1 {
			return errUsage
		}
		apply()
		t.ID, t.Name, t.TimeZone, t.Created = pos[0], *name, *tz, c.now().UTC()
		if err := c.tenants.CreateTenant(ctx, t); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "created tenant %s (time zone %s)\n", t.ID, t.TimeZone)
		return nil
	case "list":
		ts, err := c.tenants.ListTenants(ctx)
		if err != nil {
			return err
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].ID < ts[j].ID })
		w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tNAME\tTIME ZONE\tSTATUS")
		for _, t := range ts {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.ID, t.Name, zone(t.TimeZone), status(t.Disabled))
		}
		return w.Flush()
	case "show":
		if len(args) != 2 {
			return errUsage
		}
		t, err := c.tenants.GetTenant(ctx, args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "tenant %s %q, time zone %s, %s, created %s\n", t.ID, t.Name, zone(t.TimeZone), status(t.Disabled), t.Created.Format(time.RFC3339))
		return c.usage(ctx, t.ID)
	case "disable", "enable":
		if len(args) != 2 {
			return errUsage
		}
		return c.updateTenant(ctx, args[1], func(t *tenant.Tenant) { t.Disabled = args[0] == "disable" })
	case "set-tz":
		if len(args) != 3 {
			return errUsage
		}
		return c.updateTenant(ctx, args[1], func(t *tenant.Tenant) { t.TimeZone = args[2] })
	case "set-quota":
		if len(args) < 2 {
			return errUsage
		}
		t, err := c.tenants.GetTenant(ctx, args[1])
		if err != nil {
			return err
		}
		apply := quotaFlags(fs, &t.Limits)
		if _, err := parse(fs, args[2:]); err != nil {
			return err
		}
		apply()
		if err := c.tenants.UpdateTenant(ctx, *t); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "updated quotas of %s\n", t.ID)
		return nil
	}
	return fmt.Errorf("%w: unknown tenant command %q", errUsage, args[0])
}

func (c *ctl) updateTenant(ctx context.Context, id string, change func(*tenant.Tenant)) error {
	t, err := c.tenants.GetTenant(ctx, id)
	if err != nil {
		return err
	}
	change(t)
	if err := c.tenants.UpdateTenant(ctx, *t); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "updated tenant %s (%s, time zone %s)\n", t.ID, status(t.Disabled), zone(t.TimeZone))
	return nil
}

func (c *ctl) key(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return errUsage
	}
	switch args[0] {
	case "create":
		if _, err := c.tenants.GetTenant(ctx, args[1]); err != nil {
			return fmt.Errorf("tenant %s: %w", args[1], err)
		}
		plain, k, err := tenant.NewKey(args[1], c.now().UTC())
		if err != nil {
			return err
		}
		if err := c.tenants.PutKey(ctx, k); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "%s\n\nThis is the only time the key is shown. Its hash is %s.\n", plain, k.Hash)
		return nil
	case "list":
		keys, err := c.tenants.ListKeys(ctx, args[1])
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "PREFIX\tHASH\tSTATUS\tCREATED")
		for _, k := range keys {
			fmt.Fprintf(w, "%s…\t%s\t%s\t%s\n", k.Prefix, k.Hash, status(k.Disabled), k.Created.Format(time.RFC3339))
		}
		return w.Flush()
	case "disable", "enable":
		if err := c.tenants.SetKeyDisabled(ctx, args[1], args[0] == "disable"); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "key %s %sd (instances notice within their key cache time)\n", args[1], args[0])
		return nil
	}
	return fmt.Errorf("%w: unknown key command %q", errUsage, args[0])
}

func (c *ctl) usage(ctx context.Context, id string) error {
	t, err := c.tenants.GetTenant(ctx, id)
	if err != nil {
		return err
	}
	if t.Limits.Unlimited() {
		fmt.Fprintln(c.out, "no quotas set")
		return nil
	}
	us, err := c.quotas.Usage(ctx, t.ID, t.Limits, t.Location(), c.now())
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "WINDOW\tUSED\tLIMIT\tRESETS AT")
	for _, u := range us {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.Window.ID, amount(u.Window.Metric, u.Used), amount(u.Window.Metric, u.Window.Limit),
			u.Window.End.Format(time.RFC3339))
	}
	return w.Flush()
}

func (c *ctl) breaker(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	b := breaker.NewDynamo(c.client, c.table, breaker.Policy{}.WithDefaults(), breaker.WithCacheTTL(0))
	switch args[0] {
	case "list":
		keys, err := c.breakerKeys(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TARGET\tSTATE")
		for _, k := range keys {
			s, err := b.State(ctx, k)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\t%s\n", k, s)
		}
		return w.Flush()
	case "open", "close":
		if len(args) != 2 || !strings.Contains(args[1], "/") {
			return fmt.Errorf("%w: breaker %s needs a provider/model key", errUsage, args[0])
		}
		s := breaker.Open
		if args[0] == "close" {
			s = breaker.Closed
		}
		if err := b.Force(ctx, args[1], s); err != nil {
			return err
		}
		fmt.Fprintf(c.out, "breaker %s forced %s\n", args[1], s)
		return nil
	}
	return fmt.Errorf("%w: unknown breaker command %q", errUsage, args[0])
}

// breakerKeys lists the targets that have breaker state. It scans, which is
// fine for an operator tool and never done on the request path.
func (c *ctl) breakerKeys(ctx context.Context) ([]string, error) {
	var keys []string
	p := dynamodb.NewScanPaginator(c.client, &dynamodb.ScanInput{
		TableName:                 aws.String(c.table),
		FilterExpression:          aws.String("begins_with(#pk, :p) AND #sk = :s"),
		ExpressionAttributeNames:  map[string]string{"#pk": ddb.PK, "#sk": ddb.SK},
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": ddb.S("breaker#"), ":s": ddb.S("state")},
		ProjectionExpression:      aws.String("#pk"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			if v, ok := it[ddb.PK].(*types.AttributeValueMemberS); ok {
				keys = append(keys, strings.TrimPrefix(v.Value, "breaker#"))
			}
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func zone(z string) string {
	if z == "" {
		return "UTC"
	}
	return z
}

func status(disabled bool) string {
	if disabled {
		return "disabled"
	}
	return "enabled"
}

func amount(metric string, v int64) string {
	if metric == "cost" {
		return fmt.Sprintf("$%.4f", float64(v)/1e6)
	}
	return fmt.Sprint(v)
}
