//! Styles of the UI. Readable on light and dark terminals: text uses the
//! terminal's own foreground and background; emphasis is bold, reverse
//! video and underline; the few colours are mid-tones (blue, magenta,
//! red, green, cyan) that read on both. With `NO_COLOR` set
//! (<https://no-color.org>) no colour is used at all, only modifiers.

use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// The theme for this process: colours unless `NO_COLOR` is set to a non-empty value.
    pub fn from_env() -> Theme {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    pub fn plain(&self) -> Style {
        Style::default()
    }
    /// Secondary text (addresses, line numbers).
    pub fn dim(&self) -> Style {
        Style::default().add_modifier(Modifier::DIM)
    }
    /// The current instruction / line.
    pub fn current(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
    /// The cursor of the focused pane when it is not on the current line.
    pub fn cursor(&self) -> Style {
        Style::default().add_modifier(Modifier::UNDERLINED)
    }
    /// Breakpoint marker.
    pub fn breakpoint(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    /// Something the last step changed.
    pub fn changed(&self) -> Style {
        self.fg(Color::Magenta).add_modifier(Modifier::BOLD)
    }
    /// Bytes the current instruction is about to touch.
    pub fn touched(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    /// Names of things: labels, functions, helpers, maps.
    pub fn name(&self) -> Style {
        self.fg(Color::Blue)
    }
    /// Pointers described by region.
    pub fn pointer(&self) -> Style {
        self.fg(Color::Cyan)
    }
    pub fn title(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Blue)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Blue).add_modifier(Modifier::BOLD)
        } else {
            Style::default()
        }
    }
    pub fn status(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_uses_modifiers_only() {
        let t = Theme { color: false };
        for s in [
            t.breakpoint(),
            t.changed(),
            t.name(),
            t.pointer(),
            t.title(true),
        ] {
            assert_eq!(s.fg, None);
            assert_eq!(s.bg, None);
        }
        assert!(t.breakpoint().add_modifier.contains(Modifier::BOLD));
    }
}
