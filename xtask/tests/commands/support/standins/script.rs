//! The shell script each stand-in is: log the call, pick the reply by the arguments, answer.

use super::*;

impl Program {
    /// The script: appends the call to the log in `dir`, then answers from the replies.
    pub(super) fn script(&self, dir: &Path) -> String {
        let log = quote(&dir.join("invocations.log").to_string_lossy());
        let mut script = format!(
            "#!/bin/sh\n\
             # Stand-in for `{name}` written by the tests: records its arguments, answers from a table.\n\
             line={name_q}; for arg in \"$@\"; do line=\"$line $arg\"; done\n\
             # One write per line, so stand-ins running at the same time never interleave their lines.\n\
             printf '%s\\n' \"$line\" >> {log}\n",
            name = self.name,
            name_q = quote(&self.name),
        );
        // One function per reply that waits for a signal: it answers when the signal arrives.
        for (pattern_index, (_, replies)) in self.replies.iter().enumerate() {
            for (reply_index, reply) in replies.iter().enumerate().filter(|(_, r)| r.until_signalled) {
                let output = match reply.rollback_millis {
                    None => print_output(reply, "  "),
                    Some(millis) => roll_back(&self.name, reply, millis, &log),
                };
                script.push_str(&format!(
                    "on_signal_{pattern_index}_{reply_index}() {{\n  printf '%s <- %s\\n' {name_q} \"$1\" >> {log}\n  kill \"$sleeper\" 2>/dev/null\n{output}  exit {}\n}}\n",
                    reply.code,
                    name_q = quote(&self.name),
                ));
            }
        }
        script.push_str("case \"$*\" in\n");
        for (pattern_index, (pattern, replies)) in self.replies.iter().enumerate() {
            script.push_str(&format!("  {})\n", glob(pattern)));
            if replies.len() == 1 {
                script.push_str(&answer(&self.name, &replies[0], dir, (pattern_index, 0), "    "));
                script.push_str("    ;;\n");
                continue;
            }
            let counter = quote(
                &dir.join("counters")
                    .join(format!("{}.{pattern_index}", self.name))
                    .to_string_lossy(),
            );
            script.push_str(&format!(
                "    n=0; [ -f {counter} ] && read n < {counter}; n=$((n + 1)); printf '%s\\n' \"$n\" > {counter}\n    case $n in\n"
            ));
            for (reply_index, reply) in replies.iter().enumerate() {
                let label = if reply_index + 1 == replies.len() {
                    "*".to_owned()
                } else {
                    (reply_index + 1).to_string()
                };
                script.push_str(&format!("      {label})\n"));
                script.push_str(&answer(
                    &self.name,
                    reply,
                    dir,
                    (pattern_index, reply_index),
                    "        ",
                ));
                script.push_str("        ;;\n");
            }
            script.push_str("    esac ;;\n");
        }
        script.push_str(&format!(
            "  *)\n    printf 'stand-in {}: no canned reply for: %s\\n' \"$*\" >&2\n    exit {UNEXPECTED_CALL} ;;\nesac\n",
            self.name
        ));
        script
    }
}

/// The lines that give `reply`: record stdin, wait for a signal, print, exit.
fn answer(program: &str, reply: &Reply, dir: &Path, (pattern, index): (usize, usize), indent: &str) -> String {
    let mut lines = String::new();
    if reply.records_stdin {
        let stdin_log = quote(&dir.join("stdin.log").to_string_lossy());
        lines.push_str(&format!(
            "{indent}while IFS= read -r line || [ -n \"$line\" ]; do printf '%s\\n' \"$line\"; done >> {stdin_log}\n"
        ));
    }
    let waiting = dir.join("waiting");
    if let Some(program) = &reply.after_waiting {
        // Shell built-ins only: a glob over the markers, retried every 50 ms.
        let markers = quote(&waiting.join(program).to_string_lossy());
        lines.push_str(&format!(
            "{indent}tries=0\n\
             {indent}until for f in {markers}.*; do [ -e \"$f\" ] && break; done; [ -e \"$f\" ] || [ $tries -ge {limit} ]; do /bin/sleep 0.05; tries=$((tries + 1)); done\n",
            limit = SIGNAL_WAIT_SECONDS * 20,
        ));
    }
    if let Some((line, times)) = &reply.after_calls {
        // Count the matching lines of the log every 100 ms (built-ins only).
        let log = quote(&dir.join("invocations.log").to_string_lossy());
        lines.push_str(&format!(
            "{indent}tries=0\n\
             {indent}until n=0; while IFS= read -r logged; do case \"$logged\" in {glob}) n=$((n + 1)) ;; esac; done < {log}; [ $n -ge {times} ] || [ $tries -ge {limit} ]; do /bin/sleep 0.1; tries=$((tries + 1)); done\n\
             {indent}[ $n -ge {times} ] || exit {NEVER_SIGNALLED}\n",
            glob = glob(line),
            limit = SIGNAL_WAIT_SECONDS * 10,
        ));
    }
    if reply.until_signalled {
        let marker = quote(&waiting.join(format!("{program}.{pattern}.{index}")).to_string_lossy());
        lines.push_str(&format!(
            "{indent}trap 'on_signal_{pattern}_{index} SIGTERM' TERM\n\
             {indent}trap 'on_signal_{pattern}_{index} SIGINT' INT\n\
             {indent}: > {marker}\n\
             {indent}/bin/sleep {SIGNAL_WAIT_SECONDS} & sleeper=$!\n\
             {indent}wait \"$sleeper\"\n\
             {indent}exit {NEVER_SIGNALLED}\n"
        ));
        return lines;
    }
    if let Some(runs) = &reply.runs {
        for line in runs.lines() {
            lines.push_str(&format!("{indent}{line}\n"));
        }
    }
    lines.push_str(&print_output(reply, indent));
    lines.push_str(&format!("{indent}exit {}\n", reply.code));
    lines
}

/// Helm's answer to a signal, for [`Reply::rolling_back_for`]: later signals only logged, stdout,
/// the rollback's time, stderr, then the marker.
fn roll_back(program: &str, reply: &Reply, millis: u32, log: &str) -> String {
    let name = quote(program);
    let ignored = |signal: &str| quote(&format!("printf '%s <- {signal} (ignored)\\n' {name} >> {log}"));
    let print = |text: &str, to: &str| {
        if text.is_empty() {
            String::new()
        } else {
            format!("  printf '%s' {}{to}\n", quote(text))
        }
    };
    format!(
        "  trap {} TERM\n  trap {} INT\n{}  /bin/sleep {}.{:03}\n{}  printf '%s {ROLLED_BACK}\\n' {name} >> {log}\n",
        ignored("SIGTERM"),
        ignored("SIGINT"),
        print(&reply.stdout, ""),
        millis / 1000,
        millis % 1000,
        print(&reply.stderr, " >&2"),
    )
}

/// The `printf`s of a reply's stdout and stderr.
fn print_output(reply: &Reply, indent: &str) -> String {
    let mut lines = String::new();
    if !reply.stdout.is_empty() {
        lines.push_str(&format!("{indent}printf '%s' {}\n", quote(&reply.stdout)));
    }
    if !reply.stderr.is_empty() {
        lines.push_str(&format!("{indent}printf '%s' {} >&2\n", quote(&reply.stderr)));
    }
    lines
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A `case` pattern: `*` stays a wildcard, everything else is quoted to match literally.
fn glob(pattern: &str) -> String {
    pattern.split('*').map(quote).collect::<Vec<_>>().join("*")
}
