//! 2-D convolution (NCHW, f32, no groups or dilation) forward and both gradients, as GEMMs over
//! one im2col layout, one image per rayon task.
//!
//! For one image, `col` is the `[in_channels·kh·kw, out_h·out_w]` matrix whose column `p` holds
//! the input patch under output pixel `p` (zeros where the patch hangs over the padding), so with
//! the weights as a `[out_channels, in_channels·kh·kw]` matrix `W`:
//! - forward: `y = W · col` (the image's `[out_channels, out_h·out_w]` output, already NCHW);
//! - input gradient: `dcol = Wᵀ · dy`, scattered back onto the image's pixels (col2im);
//! - weight gradient: `dW = Σ_images dy · colᵀ`.
//!
//! burn-flex 0.22.1 instead converts the input to NHWC, tiles it into 512-pixel GEMMs too small to
//! thread, and has no backward kernels (burn's defaults run the weight gradient as a convolution
//! over transposed copies). Here every GEMM covers a whole image and the images are spread over
//! the threads. Sums run in a fixed order, independent of the number of threads, so the same
//! inputs give the same bits.

use rayon::prelude::*;

use crate::gemm::{matmul, transpose, DstLayout, MatRef};

/// Images whose weight-gradient contributions one task sums before the partial sums are added in
/// order. Fixed, not derived from the thread count, so the reduction order (and every bit of
/// `dW`) is the same on any pool.
const IMAGES_PER_TASK: usize = 4;

/// Output pixels one GEMM should cover at least: images with fewer (SmallCnn's 8×8 and 16×16
/// stages) share one GEMM, side by side in one im2col matrix, since gemm runs narrow matrices far
/// below its peak.
const MIN_GEMM_COLUMNS: usize = 256;

/// Where one image's block of columns sits in an im2col matrix holding several images side by
/// side: its rows are `row_stride` long and the image's columns start at `offset`.
#[derive(Clone, Copy, Debug)]
struct Columns {
    row_stride: usize,
    offset: usize,
}

/// The sizes of one convolution: everything the kernels index with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Images in the batch.
    pub batch: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding before the first row and column (the padding after only shapes `output`).
    pub pad_begin: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

impl ConvGeometry {
    /// The geometry of `input [batch, in, h, w] ⊛ weight [out, in, kh, kw]` with the given strides
    /// and `(begin, end)` padding, or `None` where the shapes do not describe a convolution with
    /// at least one image, channel and output pixel.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
    ) -> Option<Self> {
        let [batch, in_channels, height, width] = input;
        let [out_channels, weight_in, kh, kw] = weight;
        // Empty batches and channel-less convolutions are burn's (nothing to compute, or shapes
        // whose every slice is empty).
        let empty = batch == 0 || in_channels == 0 || out_channels == 0;
        if empty || weight_in != in_channels || stride.contains(&0) || kh == 0 || kw == 0 {
            return None;
        }
        let out_len = |size: usize, (begin, end): (usize, usize), k: usize, s: usize| {
            (size + begin + end).checked_sub(k).map(|room| room / s + 1)
        };
        let out_h = out_len(height, padding[0], kh, stride[0])?;
        let out_w = out_len(width, padding[1], kw, stride[1])?;
        Some(Self {
            batch,
            in_channels,
            input: [height, width],
            out_channels,
            kernel: [kh, kw],
            stride,
            pad_begin: [padding[0].0, padding[1].0],
            output: [out_h, out_w],
        })
    }

    /// Rows of the im2col matrix: `in_channels · kh · kw`.
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel[0] * self.kernel[1]
    }

    /// Output pixels per image, the im2col matrix's columns.
    fn out_pixels(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Values of one input image.
    fn image_len(&self) -> usize {
        self.in_channels * self.input[0] * self.input[1]
    }

    /// Values of one output image.
    fn out_image_len(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    /// A 1×1 kernel with stride 1 and no padding: the image itself is its im2col matrix.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.stride == [1, 1] && self.pad_begin == [0, 0]
    }

    /// For kernel offset `k` along an axis of input length `size`: the output positions
    /// `lo..hi` whose tap lands inside the input, and the input position of `lo`.
    fn valid_span(&self, axis: usize, k: usize) -> (usize, usize, usize) {
        let (size, stride, pad, out) = (
            self.input[axis],
            self.stride[axis],
            self.pad_begin[axis],
            self.output[axis],
        );
        // Output o reads input o·stride + k − pad, valid when 0 ≤ that < size.
        let lo = pad.saturating_sub(k).div_ceil(stride).min(out);
        let hi = if size + pad > k {
            ((size + pad - k - 1) / stride + 1).min(out)
        } else {
            0
        }
        .max(lo);
        (lo, hi, (lo * stride + k).saturating_sub(pad))
    }

    /// Calls `visit(row, out_range, in_start)` for each row `(channel, ky, kx)` of the im2col
    /// matrix and each output row `oy` whose tap is inside the image, with the output columns
    /// `out_range` (offsets into `col`) that read input pixels from `in_start` on (offset into
    /// the image) at the horizontal stride; everything not visited is padding.
    fn for_each_tap(
        &self,
        columns: Columns,
        mut visit: impl FnMut(usize, std::ops::Range<usize>, usize),
    ) {
        let [kh, kw] = self.kernel;
        let [height, width] = self.input;
        let out_w = self.output[1];
        for channel in 0..self.in_channels {
            for ky in 0..kh {
                let (oy_lo, oy_hi, iy_lo) = self.valid_span(0, ky);
                for kx in 0..kw {
                    let row = (channel * kh + ky) * kw + kx;
                    let (ox_lo, ox_hi, ix_lo) = self.valid_span(1, kx);
                    if ox_lo == ox_hi {
                        continue;
                    }
                    for (step, oy) in (oy_lo..oy_hi).enumerate() {
                        let iy = iy_lo + step * self.stride[0];
                        let out_start = row * columns.row_stride + columns.offset + oy * out_w;
                        visit(
                            row,
                            out_start + ox_lo..out_start + ox_hi,
                            (channel * height + iy) * width + ix_lo,
                        );
                    }
                }
            }
        }
    }

    /// Stride 1 with output rows as wide as input rows (e.g. 3×3 with padding 1): then each row
    /// of the im2col matrix is the image shifted, one contiguous copy (a [`Band`]) instead of a
    /// copy per output row.
    fn is_banded(&self) -> bool {
        self.stride == [1, 1] && self.output[1] == self.input[1]
    }

    /// Calls `visit` with the [`Band`] of each im2col row that reads any input pixel, for a
    /// [banded](Self::is_banded) geometry.
    fn for_each_band(&self, columns: Columns, mut visit: impl FnMut(Band)) {
        let [kh, kw] = self.kernel;
        let [height, width] = self.input;
        for channel in 0..self.in_channels {
            for ky in 0..kh {
                let (oy_lo, oy_hi, iy_lo) = self.valid_span(0, ky);
                for kx in 0..kw {
                    let (ox_lo, ox_hi, ix_lo) = self.valid_span(1, kx);
                    if oy_lo == oy_hi || ox_lo == ox_hi {
                        continue;
                    }
                    let row = (channel * kh + ky) * kw + kx;
                    let row_start = row * columns.row_stride + columns.offset;
                    let start = row_start + oy_lo * width + ox_lo;
                    visit(Band {
                        col: start..row_start + (oy_hi - 1) * width + ox_hi,
                        image_start: (channel * height + iy_lo) * width + ix_lo,
                        row_start,
                        rows: oy_lo..oy_hi,
                        valid: ox_lo..ox_hi,
                        width,
                    });
                }
            }
        }
    }

    /// Writes one image's im2col columns into `col` where `columns` says; the padding taps are
    /// left as they are (the caller zeroes `col` first).
    fn im2col(&self, image: &[f32], col: &mut [f32], columns: Columns) {
        if self.is_banded() {
            self.for_each_band(columns, |band| {
                let len = band.col.len();
                col[band.col.clone()]
                    .copy_from_slice(&image[band.image_start..band.image_start + len]);
                band.zero_wrapped(col);
            });
            return;
        }
        let stride = self.stride[1];
        self.for_each_tap(columns, |_, out, start| {
            let dst = &mut col[out];
            if stride == 1 {
                dst.copy_from_slice(&image[start..start + dst.len()]);
            } else {
                for (i, value) in dst.iter_mut().enumerate() {
                    *value = image[start + i * stride];
                }
            }
        });
    }

    /// Adds one image's columns of the im2col-shaped gradient `col` (where `columns` says) onto
    /// the pixels they came from (the transpose of [`im2col`](Self::im2col)), in a fixed order.
    /// `col` is scratch: its padding taps are zeroed.
    fn col2im_add(&self, col: &mut [f32], image: &mut [f32], columns: Columns) {
        if self.is_banded() {
            self.for_each_band(columns, |band| {
                // The wrapped columns would add onto the neighbouring row's pixels: zero them.
                band.zero_wrapped(col);
                let src = &col[band.col.clone()];
                let dst = &mut image[band.image_start..band.image_start + src.len()];
                for (pixel, value) in dst.iter_mut().zip(src) {
                    *pixel += value;
                }
            });
            return;
        }
        let stride = self.stride[1];
        self.for_each_tap(columns, |_, out, start| {
            let src = &col[out];
            if stride == 1 {
                for (pixel, value) in image[start..start + src.len()].iter_mut().zip(src) {
                    *pixel += value;
                }
            } else {
                for (i, value) in src.iter().enumerate() {
                    image[start + i * stride] += value;
                }
            }
        });
    }

    /// Images per GEMM: enough for [`MIN_GEMM_COLUMNS`] columns, at most a task's; one for a
    /// pointwise convolution, whose im2col matrix is the image itself.
    fn images_per_gemm(&self) -> usize {
        if self.is_pointwise() {
            return 1;
        }
        (MIN_GEMM_COLUMNS / self.out_pixels().max(1)).clamp(1, IMAGES_PER_TASK)
    }

    /// Panics unless `x` and `weight` have this geometry's sizes (the callers built it from them).
    fn check_operands(&self, x: &[f32], weight: &[f32]) {
        assert_eq!(x.len(), self.batch * self.image_len(), "input length");
        let weight_len = self.out_channels * self.patch_len();
        assert_eq!(weight.len(), weight_len, "weight length");
    }

    /// Whether one GEMM per image leaves threads idle, so each GEMM should thread itself.
    fn thread_inside_gemm(&self, tasks: usize) -> bool {
        tasks < rayon::current_num_threads()
    }
}

/// One im2col row of a banded geometry as one contiguous run: `col[col]` pairs with
/// `image[image_start..]` value for value. Within the run, the output columns outside `valid`
/// (left and right of each output row) are padding taps that the run wraps onto the neighbouring
/// input row.
struct Band {
    col: std::ops::Range<usize>,
    image_start: usize,
    row_start: usize,
    rows: std::ops::Range<usize>,
    valid: std::ops::Range<usize>,
    width: usize,
}

impl Band {
    /// Zeroes the wrapped padding taps of the run in `col`.
    fn zero_wrapped(&self, col: &mut [f32]) {
        if self.valid.start == 0 && self.valid.end == self.width {
            return;
        }
        for oy in self.rows.clone() {
            let row = self.row_start + oy * self.width;
            for ox in (0..self.valid.start).chain(self.valid.end..self.width) {
                if self.col.contains(&(row + ox)) {
                    col[row + ox] = 0.0;
                }
            }
        }
    }
}

/// `y = conv(x, weight)` (no bias) for NCHW `x` and `[out, in, kh, kw]` `weight`.
pub fn conv2d_forward(geometry: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let g = geometry;
    g.check_operands(x, weight);
    let mut y = vec![0.0; g.batch * g.out_image_len()];
    if y.is_empty() {
        return y;
    }
    let (k, pixels, cout) = (g.patch_len(), g.out_pixels(), g.out_channels);
    let w = MatRef::new(weight, cout, k);
    let group = g.images_per_gemm();
    let threaded = g.thread_inside_gemm(g.batch.div_ceil(group));
    // Each group's `W · col` is written column-major (pixel-major, the fast form: see
    // `DstLayout`) into a scratch buffer, then each image's block is transposed into its NCHW
    // planes.
    y.par_chunks_mut(group * g.out_image_len())
        .zip(x.par_chunks(group * g.image_len().max(1)))
        .for_each_init(
            || (Vec::new(), Vec::new()),
            |(col, by_pixel), (y_images, x_images)| {
                let images = y_images.len() / g.out_image_len();
                let col = MatRef::new(group_columns(g, x_images, images, col), k, images * pixels);
                by_pixel.resize(cout * images * pixels, 0.0);
                matmul(by_pixel, DstLayout::ColumnMajor, w, col, false, threaded);
                for (by_pixel, y_image) in by_pixel
                    .chunks(cout * pixels)
                    .zip(y_images.chunks_mut(g.out_image_len()))
                {
                    transpose(by_pixel, pixels, cout, y_image);
                }
            },
        );
    y
}

/// The gradients of `sum(dy · conv(x, weight))` with respect to `x` and `weight`, each computed
/// only when asked for.
pub fn conv2d_backward(
    geometry: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    need_x_grad: bool,
    need_weight_grad: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let g = geometry;
    g.check_operands(x, weight);
    assert_eq!(
        dy.len(),
        g.batch * g.out_image_len(),
        "output gradient length"
    );
    let (k, pixels, cout) = (g.patch_len(), g.out_pixels(), g.out_channels);
    let w_t = MatRef::transposed(weight, k, cout);
    let mut dx = vec![0.0; if need_x_grad { x.len() } else { 0 }];
    let threaded = g.thread_inside_gemm(g.batch.div_ceil(IMAGES_PER_TASK));

    // One task per IMAGES_PER_TASK images: its images' input gradients, and the sum of their
    // weight-gradient terms (group by group, in image order), from one im2col of each group.
    let group = g.images_per_gemm();
    let task = |x_images: &[f32], dy_images: &[f32], mut dx_images: Option<&mut [f32]>| {
        let (mut col, mut dcol, mut gathered) = (Vec::new(), Vec::new(), Vec::new());
        let mut dw = vec![0.0; if need_weight_grad { cout * k } else { 0 }];
        for (index, (x_group, dy_group)) in x_images
            .chunks(group * g.image_len().max(1))
            .zip(dy_images.chunks(group * g.out_image_len()))
            .enumerate()
        {
            let images = dy_group.len() / g.out_image_len();
            let columns = images * pixels;
            let dy_mat = MatRef::new(gather_columns(g, dy_group, &mut gathered), cout, columns);
            if need_weight_grad {
                // Summed column-major (dWᵀ stored row-major; the fast form, see `DstLayout`),
                // transposed once at the end.
                let col = group_columns(g, x_group, images, &mut col);
                let col_t = MatRef::transposed(col, columns, k);
                let accumulate = index > 0;
                matmul(
                    &mut dw,
                    DstLayout::ColumnMajor,
                    dy_mat,
                    col_t,
                    accumulate,
                    threaded,
                );
            }
            if let Some(dx_images) = dx_images.as_deref_mut() {
                let start = index * group * g.image_len();
                let dx_group = &mut dx_images[start..start + images * g.image_len()];
                if g.is_pointwise() {
                    matmul(dx_group, DstLayout::RowMajor, w_t, dy_mat, false, threaded);
                } else {
                    dcol.resize(k * columns, 0.0);
                    matmul(&mut dcol, DstLayout::RowMajor, w_t, dy_mat, false, threaded);
                    for (i, dx_image) in dx_group.chunks_mut(g.image_len()).enumerate() {
                        let at = Columns {
                            row_stride: columns,
                            offset: i * pixels,
                        };
                        g.col2im_add(&mut dcol, dx_image, at);
                    }
                }
            }
        }
        dw
    };

    let per_task_x = IMAGES_PER_TASK * g.image_len().max(1);
    let per_task_dy = IMAGES_PER_TASK * g.out_image_len().max(1);
    let partial_dw: Vec<Vec<f32>> = if need_x_grad {
        x.par_chunks(per_task_x)
            .zip(dy.par_chunks(per_task_dy))
            .zip(dx.par_chunks_mut(per_task_x))
            .map(|((x_images, dy_images), dx_images)| task(x_images, dy_images, Some(dx_images)))
            .collect()
    } else {
        x.par_chunks(per_task_x)
            .zip(dy.par_chunks(per_task_dy))
            .map(|(x_images, dy_images)| task(x_images, dy_images, None))
            .collect()
    };

    let dw = need_weight_grad.then(|| {
        let mut partials = partial_dw.into_iter();
        let mut dw = partials.next().unwrap_or_else(|| vec![0.0; cout * k]);
        for partial in partials {
            for (total, value) in dw.iter_mut().zip(&partial) {
                *total += value;
            }
        }
        let mut by_channel = vec![0.0; cout * k];
        transpose(&dw, k, cout, &mut by_channel);
        by_channel
    });
    (need_x_grad.then_some(dx), dw)
}

/// The row-major im2col matrix of the `count` images in `images`, side by side (image `i`'s
/// columns at `i · pixels`): the image itself for a pointwise convolution (one image), else
/// `buffer` filled by im2col (grown to size on first use, then reused).
fn group_columns<'a>(
    g: &ConvGeometry,
    images: &'a [f32],
    count: usize,
    buffer: &'a mut Vec<f32>,
) -> &'a [f32] {
    if g.is_pointwise() {
        return images;
    }
    let row_stride = count * g.out_pixels();
    buffer.resize(g.patch_len() * row_stride, 0.0);
    buffer.fill(0.0);
    for (i, image) in images.chunks(g.image_len().max(1)).enumerate() {
        let at = Columns {
            row_stride,
            offset: i * g.out_pixels(),
        };
        g.im2col(image, buffer, at);
    }
    buffer
}

/// The output gradient of a group of images as one `[out_channels, images · pixels]` matrix,
/// images side by side as in [`group_columns`]: the slice itself for one image, else gathered
/// into `buffer`.
fn gather_columns<'a>(g: &ConvGeometry, dy: &'a [f32], buffer: &'a mut Vec<f32>) -> &'a [f32] {
    let (pixels, out_image) = (g.out_pixels(), g.out_image_len());
    let images = dy.len() / out_image.max(1);
    if images <= 1 {
        return dy;
    }
    let row_stride = images * pixels;
    buffer.resize(g.out_channels * row_stride, 0.0);
    for (i, image) in dy.chunks(out_image).enumerate() {
        for (channel, plane) in image.chunks(pixels).enumerate() {
            let start = channel * row_stride + i * pixels;
            buffer[start..start + pixels].copy_from_slice(plane);
        }
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution written as its definition, one output value at a time.
    fn direct(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let [h, wd] = g.input;
        let [kh, kw] = g.kernel;
        let [oh, ow] = g.output;
        let mut y = vec![0.0; g.batch * g.out_image_len()];
        for n in 0..g.batch {
            for co in 0..g.out_channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut acc = 0.0f32;
                        for ci in 0..g.in_channels {
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy =
                                        (oy * g.stride[0] + ky) as isize - g.pad_begin[0] as isize;
                                    let ix =
                                        (ox * g.stride[1] + kx) as isize - g.pad_begin[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                        continue;
                                    }
                                    let xv = x[((n * g.in_channels + ci) * h + iy as usize) * wd
                                        + ix as usize];
                                    let wv = w[((co * g.in_channels + ci) * kh + ky) * kw + kx];
                                    acc += xv * wv;
                                }
                            }
                        }
                        y[((n * g.out_channels + co) * oh + oy) * ow + ox] = acc;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn im2col_forward_equals_the_definition_with_asymmetric_padding_and_strides() {
        for (stride, padding) in [
            ([1, 1], [(1, 1), (1, 1)]),
            ([2, 1], [(0, 1), (2, 0)]),
            ([2, 3], [(1, 0), (0, 0)]),
        ] {
            let g = ConvGeometry::new([2, 3, 7, 6], [4, 3, 3, 2], stride, padding).unwrap();
            let x: Vec<f32> = (0..2 * 3 * 7 * 6)
                .map(|i| ((i * 37 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let w: Vec<f32> = (0..4 * 3 * 3 * 2)
                .map(|i| ((i * 13 % 7) as f32 - 3.0) / 2.0)
                .collect();
            let got = conv2d_forward(&g, &x, &w);
            let want = direct(&g, &x, &w);
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "{stride:?} {padding:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn geometry_refuses_a_kernel_larger_than_the_padded_input() {
        assert!(ConvGeometry::new([1, 1, 2, 2], [1, 1, 3, 3], [1, 1], [(0, 0), (0, 0)]).is_none());
        assert!(ConvGeometry::new([1, 2, 5, 5], [1, 3, 3, 3], [1, 1], [(1, 1), (1, 1)]).is_none());
        let g = ConvGeometry::new([1, 1, 2, 2], [1, 1, 3, 3], [1, 1], [(1, 0), (0, 1)]).unwrap();
        assert_eq!(g.output, [1, 1]);
    }
}
