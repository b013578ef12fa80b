use burn::prelude::*;
use burn::tensor::Distribution;
use std::time::Instant;
fn med(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2] * 1e3
}
fn main() {
    let device = Device::flex().autodiff();
    let x = Tensor::<3>::random([64, 65, 128], Distribution::Default, &device).require_grad();
    let g = Tensor::<3>::random([64, 65, 128], Distribution::Default, &device);
    let xs = Tensor::<3>::random([64, 65, 128], Distribution::Default, &Device::flex());
    let (mut f, mut b, mut p, mut m) = (vec![], vec![], vec![], vec![]);
    for _ in 0..30 {
        let t = Instant::now();
        let y = ember_kernels::ops::gelu(x.clone());
        device.sync().unwrap();
        f.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let l = (y * g.clone()).sum();
        device.sync().unwrap();
        m.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let _gr = l.backward();
        device.sync().unwrap();
        b.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let y = ember_kernels::ops::gelu(xs.clone());
        device.sync().unwrap();
        p.push(t.elapsed().as_secs_f64());
        drop(y);
    }
    println!(
        "gelu fwd autodiff {:.3} ms, mul+sum {:.3}, backward {:.3}, fwd plain flex {:.3}",
        med(f),
        med(m),
        med(b),
        med(p)
    );
}
