package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/sluice-llm/sluice/shared/engine"
	"github.com/sluice-llm/sluice/shared/shadow"
)

// policies runs the commands about migration: shadow records and canary
// assignment.
func (c *ctl) policies(ctx context.Context, args []string) error {
	if len(args) < 2 {
		return errUsage
	}
	switch args[0] + " " + args[1] {
	case "shadow list":
		return c.shadowList(ctx, args[2:])
	case "canary which":
		if len(args) != 4 {
			return errUsage
		}
		// The same hash the engine uses: a tenant is in a canary of p%
		// exactly when its bucket is below p × 100.
		b := engine.Bucket(args[2], args[3])
		fmt.Fprintf(c.out, "tenant %s on route %s: bucket %d of 10000, so in the canary when its percent is above %.2f\n",
			args[3], args[2], b, float64(b)/100)
		return nil
	}
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0]+" "+args[1])
}

func (c *ctl) shadowList(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("shadow list", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 20, "records to show")
	if len(args) == 0 {
		return errUsage
	}
	route := args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	recs, err := shadow.NewDynamo(c.client, c.table, c.now).List(ctx, route, *n)
	if err != nil {
		return err
	}
	matched := 0
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "AT\tREQUEST\tTENANT\tPRIMARY\tOUTCOME\tMS\tTOKENS\tCANDIDATE\tOUTCOME\tMS\tTOKENS\tMATCH")
	for _, r := range recs {
		p, s := r.Primary, r.Candidate
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%.0f\t%d\t%s\t%s\t%.0f\t%d\t%v\n",
			r.At.UTC().Format("2006-01-02 15:04:05"), r.RequestID, r.Tenant,
			p.Target, outcome(p), p.LatencyMS, p.CompletionTokens, s.Target, outcome(s), s.LatencyMS, s.CompletionTokens, r.Match)
		if r.Match {
			matched++
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(recs) > 0 {
		fmt.Fprintf(c.out, "%d of %d matched\n", matched, len(recs))
	}
	return nil
}

func outcome(s shadow.Summary) string {
	o := s.Outcome
	if s.Cache == "hit" {
		o += " (cached)"
	}
	if s.Check != "" {
		o += ", " + s.Check
	}
	if s.FinishReason != "" && s.FinishReason != "stop" {
		o += ", finish " + strconv.Quote(s.FinishReason)
	}
	return o
}
