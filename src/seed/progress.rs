//! Progress of a seed run: a bar on a terminal, plain lines otherwise.

use std::{io::IsTerminal, time::Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Reports the stages of a seed run.
pub struct Progress {
    terminal: bool,
    quiet: bool,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines when it is not.
    pub fn auto() -> Self {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            quiet: false,
        }
    }

    /// Reports nothing (tests).
    pub fn quiet() -> Self {
        Progress {
            terminal: false,
            quiet: true,
        }
    }

    pub fn stage(&self, name: &str, total: u64) -> Stage {
        let bar = if self.terminal {
            let bar = ProgressBar::new(total).with_message(name.to_owned());
            if let Ok(style) =
                ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            Some(bar)
        } else {
            None
        };
        Stage {
            name: name.to_owned(),
            total,
            done: 0,
            next_line: total / 10,
            bar,
            quiet: self.quiet,
            started: Instant::now(),
        }
    }
}

/// One stage (e.g. "clickhouse price ticks").
pub struct Stage {
    name: String,
    total: u64,
    done: u64,
    next_line: u64,
    bar: Option<ProgressBar>,
    quiet: bool,
    started: Instant,
}

impl Stage {
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
        } else if !self.quiet
            && self.total >= 100_000
            && self.done >= self.next_line
            && self.done < self.total
        {
            eprintln!("seed: {}: {}/{}", self.name, self.done, self.total);
            self.next_line += self.total / 10;
        }
    }

    pub fn finish(self) {
        let secs = self.started.elapsed().as_secs_f64();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("seed: {}: {} in {secs:.2}s", self.name, self.done);
        }
    }
}
