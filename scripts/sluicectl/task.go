package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-llm/sluice/shared/config"
	"github.com/sluice-llm/sluice/shared/gateway"
	"github.com/sluice-llm/sluice/shared/tasks"
)

// task handles `task show` and `task replay`.
func (c *ctl) task(ctx context.Context, args []string, getenv func(string) string) error {
	if len(args) == 0 {
		return errUsage
	}
	store := tasks.NewDynamo(c.client, c.table, 0)
	fs := flag.NewFlagSet("task", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch args[0] {
	case "show":
		if len(args) != 2 {
			return errUsage
		}
		t, err := store.Get(ctx, args[1])
		if err != nil {
			return err
		}
		c.showTask(t)
		return nil
	case "replay":
		target := fs.String("target", "", "provider/model to run the task on")
		path := fs.String("config", "", "gateway configuration (default $SLUICE_CONFIG, else built-in)")
		asJSON := fs.Bool("json", false, "print both results as JSON")
		timeout := fs.Duration("timeout", 5*time.Minute, "how long the replay may take")
		pos, err := parse(fs, args[1:])
		if err != nil || len(pos) != 1 || *target == "" {
			return errUsage
		}
		t, err := store.Get(ctx, pos[0])
		if err != nil {
			return err
		}
		replay, err := replayTask(ctx, t, *target, *path, getenv, *timeout)
		if err != nil {
			return err
		}
		if *asJSON {
			enc := json.NewEncoder(c.out)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"task_id": t.ID, "original": side(t.Status, t.Result, t.Attempts, t.Error, t.Usage.TotalTokens, t.CostUSD),
				"replay": side(replay.Status, replay.Result, replay.Attempts, replay.Error, replay.Usage.TotalTokens, replay.CostUSD)})
		}
		c.sideBySide(t, *target, replay)
		return nil
	}
	return fmt.Errorf("%w: unknown task command %q", errUsage, args[0])
}

// replayTask runs the stored request on target with the configured
// providers (their keys from the environment, as the functions read them).
// Nothing is stored: the original stays as it was.
func replayTask(ctx context.Context, t *tasks.Task, target, path string, getenv func(string) string, timeout time.Duration) (*tasks.Outcome, error) {
	cfg, _, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	eng, err := gateway.Build(ctx, cfg, getenv)
	if err != nil {
		return nil, err
	}
	runner := tasks.NewRunner(eng, tasks.RunnerOptions{Cost: gateway.Cost(cfg.Prices)})
	if !runner.HasModel(target) {
		return nil, fmt.Errorf("target %q: no such model or provider in the configuration (want provider/model or an alias)", target)
	}
	req := *t.Request
	req.Model, req.Escalation = target, nil
	replay := *t
	replay.Request = &req
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return runner.Run(rctx, &replay), nil
}

type sideDoc struct {
	Status        tasks.Status    `json:"status"`
	Served        string          `json:"served_by,omitempty"`
	ReportedModel string          `json:"reported_model,omitempty"`
	Fingerprint   string          `json:"system_fingerprint,omitempty"`
	Attempts      int             `json:"attempts"`
	Output        json.RawMessage `json:"output,omitempty"`
	Text          string          `json:"text,omitempty"`
	Error         *tasks.Error    `json:"error,omitempty"`
	Tokens        int             `json:"total_tokens"`
	CostUSD       float64         `json:"cost_usd"`
}

func side(st tasks.Status, r *tasks.Result, as []tasks.Attempt, e *tasks.Error, tokens int, cost float64) sideDoc {
	d := sideDoc{Status: st, Attempts: len(as), Error: e, Tokens: tokens, CostUSD: cost}
	if r != nil {
		d.Output, d.Text = r.Output, r.Text
		if r.Attempt >= 1 && r.Attempt <= len(as) {
			a := as[r.Attempt-1]
			d.Served, d.ReportedModel, d.Fingerprint = a.Target, a.ReportedModel, a.SystemFingerprint
		}
	}
	return d
}

func (c *ctl) showTask(t *tasks.Task) {
	fmt.Fprintf(c.out, "task %s  %s  tenant %q  created %s  runs %d\n", t.ID, t.Status, t.Tenant, t.CreatedAt.Format(time.RFC3339), t.Runs)
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "#\tMODEL\tREPAIR\tSERVED BY\tREPORTED MODEL\tFINGERPRINT\tOUTCOME\tTOKENS\tCOST\tLATENCY")
	for _, a := range t.Attempts {
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%s\t%s\t%s\t%d\t$%.6f\t%.0f ms\n", a.N, a.Model, a.Repair, dash(a.Target), dash(a.ReportedModel),
			dash(a.SystemFingerprint), a.Outcome, a.Usage.TotalTokens, a.CostUSD, a.LatencyMS)
	}
	_ = w.Flush()
	if t.Result != nil {
		fmt.Fprintf(c.out, "result (attempt %d):\n%s\n", t.Result.Attempt, answer(sideDoc{Output: t.Result.Output, Text: t.Result.Text}))
	}
	if t.Error != nil {
		fmt.Fprintf(c.out, "error %s: %s\n", t.Error.Code, t.Error.Message)
	}
}

// sideBySide prints the stored result and the replay in two columns.
func (c *ctl) sideBySide(t *tasks.Task, target string, replay *tasks.Outcome) {
	l := side(t.Status, t.Result, t.Attempts, t.Error, t.Usage.TotalTokens, t.CostUSD)
	r := side(replay.Status, replay.Result, replay.Attempts, replay.Error, replay.Usage.TotalTokens, replay.CostUSD)
	const width = 56
	fmt.Fprintf(c.out, "task %s (%s), replayed on %s\n\n", t.ID, t.Request.Model, target)
	row := func(label, a, b string) { fmt.Fprintf(c.out, "%-19s %-*s  %s\n", label, width, a, b) }
	row("", "ORIGINAL", "REPLAY")
	row("status", string(l.Status), string(r.Status))
	row("served by", dash(l.Served), dash(r.Served))
	row("reported model", dash(l.ReportedModel), dash(r.ReportedModel))
	row("system_fingerprint", dash(l.Fingerprint), dash(r.Fingerprint))
	row("attempts", fmt.Sprint(l.Attempts), fmt.Sprint(r.Attempts))
	row("tokens", fmt.Sprint(l.Tokens), fmt.Sprint(r.Tokens))
	row("cost", fmt.Sprintf("$%.6f", l.CostUSD), fmt.Sprintf("$%.6f", r.CostUSD))
	if l.Error != nil || r.Error != nil {
		row("error", errText(l.Error), errText(r.Error))
	}
	fmt.Fprintln(c.out)
	left, right := wrap(answer(l), width), wrap(answer(r), width)
	for i := 0; i < max(len(left), len(right)); i++ {
		row(map[bool]string{true: "output"}[i == 0], at(left, i), at(right, i))
	}
	same := string(l.Output) == string(r.Output) && l.Text == r.Text
	fmt.Fprintf(c.out, "\noutputs %s\n", map[bool]string{true: "are identical", false: "differ"}[same])
}

func answer(d sideDoc) string {
	if len(d.Output) > 0 {
		var v any
		if json.Unmarshal(d.Output, &v) == nil {
			b, _ := json.MarshalIndent(v, "", "  ")
			return string(b)
		}
	}
	return d.Text
}

// wrap splits s into lines of at most width runes, keeping its own breaks.
func wrap(s string, width int) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		r := []rune(line)
		for len(r) > width {
			out = append(out, string(r[:width]))
			r = r[width:]
		}
		out = append(out, string(r))
	}
	return out
}

func at(lines []string, i int) string {
	if i < len(lines) {
		return lines[i]
	}
	return ""
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func errText(e *tasks.Error) string {
	if e == nil {
		return "-"
	}
	return e.Code
}
