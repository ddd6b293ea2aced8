//! `eval --sheet`: a contact sheet. One row of panels at a common height — the content, the
//! style images, then each picture — with labels (file name and scores) under each, and, when
//! logs were given, the loss curves below (plotters, bitmap backend). Text is drawn with
//! ab_glyph in Go Regular (Bigelow & Holmes, BSD-3-Clause; `cli/assets/`, subset to ASCII
//! and a few signs: 8 KB), embedded in the binary.
//!
//! Layout (pixels): panels of height `H` = the tallest picture's height clamped to 192..=512;
//! each panel `max(W_i, 280)` wide, `W_i` the image's width at height `H`; a margin of 12
//! around and between panels; 5 label lines of 20 under the images. The sheet is
//! `12 + Σ (panel + 12)` wide (at least 760 with logs) and `12 + H + 106 + 12` high, plus
//! `320 + 12` for the loss curves when logs were given.

use crate::eval::{content_rel, Evaluated};
use anyhow::{anyhow, Result};
use nst::image::RgbImage;

/// The label font (see the module docs).
const FONT: &[u8] = include_bytes!("../assets/Go-Regular-ascii.ttf");
/// Margin around and between panels.
pub const MARGIN: usize = 12;
/// Narrowest panel (room for the labels).
pub const MIN_PANEL_W: usize = 280;
/// Label lines under each panel, their height, and the font size.
pub const LABEL_LINES: usize = 5;
pub const LINE_H: usize = 20;
const FONT_PX: f32 = 14.0;
/// Space between an image and its first label line.
pub const LABEL_GAP: usize = 6;
/// Height of the loss-curve panel, and the sheet's least width when there is one.
pub const PLOT_H: usize = 320;
pub const PLOT_MIN_W: usize = 760;

/// The panels' common height for pictures whose tallest is `tallest` px.
pub fn panel_height(tallest: usize) -> usize {
    tallest.clamp(192, 512)
}

/// An RGB canvas, 8 bits per channel, row-major.
struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn new(w: usize, h: usize) -> Canvas {
        Canvas {
            w,
            h,
            px: vec![255; w * h * 3],
        }
    }

    /// Copy `img` (0..=1 RGB) with its top-left corner at (x, y).
    fn blit(&mut self, img: &RgbImage, x: usize, y: usize) {
        let src = img.to_u8();
        for row in 0..img.height.min(self.h.saturating_sub(y)) {
            let n = img.width.min(self.w.saturating_sub(x)) * 3;
            let d = ((y + row) * self.w + x) * 3;
            let s = row * img.width * 3;
            self.px[d..d + n].copy_from_slice(&src[s..s + n]);
        }
    }

    /// Blend `color` into pixel (x, y) with coverage `c` in 0..=1 (outside: ignored).
    fn blend(&mut self, x: i64, y: i64, c: f32, color: [u8; 3]) {
        if x < 0 || y < 0 || x as usize >= self.w || y as usize >= self.h {
            return;
        }
        let i = (y as usize * self.w + x as usize) * 3;
        for (v, &target) in self.px[i..i + 3].iter_mut().zip(&color) {
            let old = *v as f32;
            *v = (old + (target as f32 - old) * c.clamp(0.0, 1.0)).round() as u8;
        }
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, color: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.blend(xx as i64, yy as i64, 1.0, color);
            }
        }
    }

    /// `s` in the label font at `FONT_PX`, its baseline at `baseline`, from `x`; glyphs that
    /// would pass `max_x` are left out (the label is cut at its panel's edge).
    fn text(&mut self, x: usize, baseline: usize, max_x: usize, s: &str, color: [u8; 3]) {
        use ab_glyph::{point, Font, FontRef, PxScale, ScaleFont};
        let Ok(font) = FontRef::try_from_slice(FONT) else {
            return;
        };
        let scaled = font.as_scaled(PxScale::from(FONT_PX));
        let mut pen = x as f32;
        let mut prev = None;
        for ch in s.chars() {
            let id = scaled.glyph_id(ch);
            if let Some(p) = prev {
                pen += scaled.kern(p, id);
            }
            let advance = scaled.h_advance(id);
            if pen + advance > max_x as f32 {
                break;
            }
            let glyph = id.with_scale_and_position(FONT_PX, point(pen, baseline as f32));
            if let Some(outline) = font.outline_glyph(glyph) {
                let b = outline.px_bounds();
                outline.draw(|gx, gy, c| {
                    self.blend(
                        b.min.x as i64 + gx as i64,
                        b.min.y as i64 + gy as i64,
                        c,
                        color,
                    )
                });
            }
            pen += advance;
            prev = Some(id);
        }
    }
}

/// One panel: an image at the common height and its label lines (the first in the `marker`
/// colour square when it has a curve).
struct Panel {
    image: RgbImage,
    lines: Vec<String>,
    marker: Option<[u8; 3]>,
}

/// The colour of the `k`-th curve (plotters' Palette99, as the curves use).
fn curve_color(k: usize) -> [u8; 3] {
    use plotters::style::{Color, Palette, Palette99};
    let (r, g, b) = Palette99::pick(k).rgb();
    [r, g, b]
}

/// The lines of text under a picture.
fn picture_lines(e: &Evaluated) -> Vec<String> {
    let m = &e.measures;
    let layers: Vec<String> = m.gram_rel.iter().map(|(_, v)| format!("{v:.2}")).collect();
    let time = match (e.seconds(), e.log.as_ref().and_then(|l| l.last())) {
        (Some(s), Some(p)) => format!("{s:.1} s, {} it", p.iteration),
        _ => "no log".into(),
    };
    vec![
        crate::eval::file_name(&e.path),
        format!(
            "total {:.3e} (c {:.2e} s {:.2e} tv {:.1e})",
            m.total,
            m.weighted("content"),
            m.weighted("style"),
            m.weighted("tv")
        ),
        format!("gram rel {}", layers.join(" ")),
        format!(
            "gram mean {:.3}  content_rel {:.3}",
            m.gram_rel_mean,
            content_rel(m)
        ),
        format!("SSIM {:.3}  {time}", m.ssim),
    ]
}

/// The contact sheet of the module docs. `styles` are (file name, image).
pub fn draw(
    content: (&str, &RgbImage),
    styles: &[(String, RgbImage)],
    rows: &[Evaluated],
) -> Result<RgbImage> {
    let tallest = rows.iter().map(|e| e.image.height).max().unwrap_or(0);
    let h = panel_height(tallest);
    let at_h = |img: &RgbImage| {
        let w = ((img.width as f64 * h as f64 / img.height as f64).round() as usize).max(1);
        img.resize(w, h)
    };
    let mut panels = vec![Panel {
        image: at_h(content.1),
        lines: vec![content.0.to_string(), "content".into()],
        marker: None,
    }];
    for (k, (name, img)) in styles.iter().enumerate() {
        panels.push(Panel {
            image: at_h(img),
            lines: vec![name.clone(), format!("style {}", k + 1)],
            marker: None,
        });
    }
    let mut logs = Vec::new();
    for e in rows {
        let marker = e.log.as_ref().map(|l| {
            logs.push((crate::eval::file_name(&e.path), l.as_slice()));
            curve_color(logs.len() - 1)
        });
        panels.push(Panel {
            image: at_h(&e.image),
            lines: picture_lines(e),
            marker,
        });
    }
    let widths: Vec<usize> = panels
        .iter()
        .map(|p| p.image.width.max(MIN_PANEL_W))
        .collect();
    let mut width = MARGIN + widths.iter().map(|w| w + MARGIN).sum::<usize>();
    let row_h = h + LABEL_GAP + LABEL_LINES * LINE_H;
    let mut height = MARGIN + row_h + MARGIN;
    if !logs.is_empty() {
        width = width.max(PLOT_MIN_W);
        height += PLOT_H + MARGIN;
    }
    let mut canvas = Canvas::new(width, height);
    let mut x = MARGIN;
    for (p, &pw) in panels.iter().zip(&widths) {
        canvas.blit(&p.image, x + (pw - p.image.width) / 2, MARGIN);
        for (i, line) in p.lines.iter().enumerate() {
            let baseline = MARGIN + h + LABEL_GAP + (i + 1) * LINE_H - 5;
            let mut tx = x;
            if let (0, Some(color)) = (i, p.marker) {
                canvas.rect(x, baseline - 11, 11, 11, color);
                tx += 16;
            }
            canvas.text(tx, baseline, x + pw, line, [0, 0, 0]);
        }
        x += pw + MARGIN;
    }
    if !logs.is_empty() {
        let plot = loss_curves(&logs, width - 2 * MARGIN, PLOT_H)?;
        canvas.blit(&plot, MARGIN, MARGIN + row_h + MARGIN);
    }
    Ok(RgbImage::from_u8(canvas.w, canvas.h, &canvas.px)?)
}

/// The loss curves: total (log scale) against iteration, and against seconds, one line per
/// log, as a `w × h` image.
fn loss_curves(
    logs: &[(String, &[crate::eval::LogPoint])],
    w: usize,
    h: usize,
) -> Result<RgbImage> {
    use plotters::prelude::*;
    static FONT_ONCE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let registered = *FONT_ONCE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if !registered {
        return Err(anyhow!("the built-in label font did not load"));
    }
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing the loss curves: {e}");
    let mut buf = vec![255u8; w * h * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w as u32, h as u32)).into_drawing_area();
        let (left, right) = root.split_horizontally((w / 2) as i32);
        let all = logs.iter().flat_map(|(_, l)| l.iter());
        let lo = all.clone().map(|p| p.total).fold(f64::INFINITY, f64::min);
        let hi = all.clone().map(|p| p.total).fold(0.0, f64::max);
        let (lo, hi) = if lo > 0.0 && hi > lo {
            (lo / 1.1, hi * 1.1)
        } else {
            (lo.max(1e-12) / 2.0, hi.max(1e-12) * 2.0)
        };
        let max_it = all.clone().map(|p| p.iteration).max().unwrap_or(1).max(1) as f64;
        let max_s = all.map(|p| p.seconds).fold(0.0, f64::max).max(1e-3);
        for (area, by_time) in [(left, false), (right, true)] {
            let (caption, x_desc, x_max) = if by_time {
                ("total loss vs time", "seconds", max_s)
            } else {
                ("total loss vs iteration", "iteration", max_it)
            };
            let mut chart = ChartBuilder::on(&area)
                .caption(caption, ("sans-serif", 16))
                .margin(8)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(0f64..x_max, (lo..hi).log_scale())
                .map_err(|e| err(&e))?;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc("total")
                .label_style(("sans-serif", 12))
                .y_labels(6)
                .light_line_style(RGBColor(238, 238, 238))
                .y_label_formatter(&|v| format!("{v:.1e}"))
                .draw()
                .map_err(|e| err(&e))?;
            for (k, (name, points)) in logs.iter().enumerate() {
                let [r, g, b] = curve_color(k);
                let color = RGBColor(r, g, b);
                let xy = points.iter().map(|p| {
                    let x = if by_time {
                        p.seconds
                    } else {
                        p.iteration as f64
                    };
                    (x, p.total)
                });
                chart
                    .draw_series(LineSeries::new(xy, color.stroke_width(2)))
                    .map_err(|e| err(&e))?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(RgbImage::from_u8(w, h, &buf)?)
}
