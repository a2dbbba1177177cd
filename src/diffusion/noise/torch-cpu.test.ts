// torch.randn reproduction, checked against values printed by real PyTorch (x86-64 CPU builds) and published in
// other projects' test fixtures, plus exactness checks of the emulated float32 FMA.
import { describe, expect, it } from 'vitest';
import { createGenerator, resolveSeed, batchLatents } from './index.ts';
import { Mt19937, TorchCpuGenerator, fmaF32, cephesLogF32, cephesSinCosF32 } from './torch-cpu.ts';

const f32 = (xs: number[]) => Array.from(new Float32Array(xs));

describe('MT19937', () => {
  it('matches the reference sequence of init_genrand(5489) and torch.rand after manual_seed(0)', () => {
    const mt = new Mt19937(5489);
    // First outputs of the reference mt19937ar.c / std::mt19937 default seed.
    expect([mt.next(), mt.next(), mt.next()]).toEqual([3499211612, 581869302, 3890346734]);
    const mt0 = new Mt19937(5489);
    for (let i = 0; i < 9999; i++) mt0.next();
    expect(mt0.next()).toBe(4123659995); // C++11 [rand.predef]: the 10000th draw of std::mt19937
    // torch.manual_seed(0); torch.rand(2) -> tensor([0.4963, 0.7682])
    const g = new TorchCpuGenerator(0);
    expect(g.uniformF32()).toBeCloseTo(0.4963, 4);
    expect(g.uniformF32()).toBeCloseTo(0.7682, 4);
  });
});

describe('torch.randn bit-exactness', () => {
  // torch.manual_seed(0); X = torch.randn(6, 4); W = torch.randn(3, 4); b = torch.randn(3)
  // (values printed by PyTorch, baked into a public test; X takes the n >= 16 path with a redrawn tail,
  // W and b the double path with the cached sine half).
  const X = [
    -1.1258398294448853, -1.152360200881958, -0.2505785822868347, -0.4338788092136383,
    0.8487103581428528, 0.6920091509819031, -0.31601276993751526, -2.1152193546295166,
    0.46809640526771545, -0.1577124446630478, 1.4436601400375366, 0.26604941487312317,
    0.16645534336566925, 0.8743818402290344, -0.14347384870052338, -0.1116093322634697,
    0.9318265914916992, 1.2590092420578003, 2.0049805641174316, 0.05373690277338028,
    0.6180566549301147, -0.41280221939086914, -0.8410648107528687, -2.316041946411133,
  ];
  const W = [
    0.3703935444355011, 1.4565025568008423, 0.9398099184036255, 0.7748488187789917,
    0.19186942279338837, 1.2637947797775269, -1.2904350757598877, -0.7911027073860168,
    -0.02087947353720665, -0.7184800505638123, 0.5186367630958557, -1.3125219345092773,
  ];
  const b = [0.1919950693845749, 0.5427713394165039, -2.2187793254852295];

  it('reproduces manual_seed(0) randn(6,4), randn(3,4), randn(3) exactly', () => {
    const g = createGenerator(0);
    expect(Array.from(g.randn(24))).toEqual(f32(X));
    expect(Array.from(g.randn(12))).toEqual(f32(W));
    expect(Array.from(g.randn(3))).toEqual(f32(b));
  });

  it('reproduces manual_seed(42) randn(2,2,4,4), randn(3,2,3,3), randn(3): where the FMA contraction shows', () => {
    // Printed by PyTorch and baked into a public conv test. Without the fused multiply-adds that GCC puts into
    // avx_mathfun's polynomials, elements 4 of the first tensor and 26 of the second come out one ulp off.
    const input = [
      1.9269152879714966, 1.4872840642929077, 0.9007171988487244, -2.1055209636688232,
      0.6784184575080872, -1.2345448732376099, -0.04306747764348984, -1.6046669483184814,
      -0.7521352767944336, 1.6487230062484741, -0.3924786448478699, -1.4036071300506592,
      -0.7278813123703003, -0.5594301819801331, -0.7688388824462891, 0.7624453902244568,
      1.6423169374465942, -0.1595974713563919, -0.4973975419998169, 0.439589262008667,
      -0.7581311464309692, 1.078317642211914, 0.8008005619049072, 1.680620551109314,
      1.27912437915802, 1.2964228391647339, 0.610466480255127, 1.334737777709961,
      -0.2316243201494217, 0.041759490966796875, -0.2515752911567688, 0.859858512878418,
      -1.3846737146377563, -0.8712361454963684, -0.223365917801857, 1.7173614501953125,
      0.3188803195953369, -0.42451897263526917, 0.3057209253311157, -0.7745925188064575,
      -1.5575724840164185, 0.9956361055374146, -0.8797858357429504, -0.6011420488357544,
      -1.2741512060165405, 2.1227850914001465, -1.234653115272522, -0.4879138767719269,
      -0.9138230085372925, -0.6581372618675232, 0.07802387326955795, 0.5258087515830994,
      -0.48799172043800354, 1.1913690567016602, -0.8140076398849487, -0.7359927892684937,
      -1.4032478332519531, 0.03600366786122322, -0.06347727030515671, 0.6756148934364319,
      -0.0978068932890892, 1.8445940017700195, -1.184537410736084, 1.3835493326187134,
    ];
    const weight = [
      1.4451338052749634, 0.8564125299453735, 2.218075752258301, 0.5231655240058899,
      0.34664666652679443, -0.19733144342899323, -1.0545889139175415, 1.2779955863952637,
      -0.1721901297569275, 0.5237884521484375, 0.056621819734573364, 0.4262961447238922,
      0.575005054473877, -0.6417241096496582, -2.2063984870910645, -0.7508030533790588,
      0.01086814422160387, -0.33874234557151794, -1.3406795263290405, -0.5853705406188965,
      0.5361881256103516, 0.5246226191520691, 1.1412016153335571, 0.05164359509944916,
      0.7439519762992859, -0.4815843999385834, -1.0494661331176758, 0.603898823261261,
      -1.7222950458526611, -0.827768862247467, 1.334702968597412, 0.48353928327560425,
      -2.5095443725585938, 0.4880010485649109, 0.7845868468284607, 0.02864718623459339,
      0.640755295753479, 0.5832474231719971, -0.3890652060508728, 0.5279164910316467,
      1.031091570854187, -0.7047650218009949, 1.013148307800293, -0.330817848443985,
      0.517693042755127, 0.38777846097946167, 0.7199674844741821, 0.41140761971473694,
      -0.5733190178871155, 0.5068639516830444, -0.4752098321914673, -0.49202650785446167,
      0.27037355303764343, -0.5628241896629333,
    ];
    const bias = [
      1.2175776958465576, -0.8914098143577576, 0.7859604954719543,
    ];
    const g = createGenerator(42);
    expect(Array.from(g.randn(64))).toEqual(f32(input));
    expect(Array.from(g.randn(54))).toEqual(f32(weight));
    expect(Array.from(g.randn(3))).toEqual(f32(bias));
  });

  it('reproduces manual_seed(0) randn(16): the first block without a tail', () => {
    // torch.manual_seed(0); torch.randn(4, 4)
    const expected = [-1.1258398, -1.1523602, -0.25057858, -0.4338788, 0.84871036, 0.69200915, -0.31601277,
      -2.1152194, 0.32227492, -1.2633348, 0.3499832, 0.30813393, 0.11984151, 1.2376579, 1.1167772, -0.24727815];
    expect(Array.from(createGenerator(0).randn(16))).toEqual(f32(expected));
  });

  it('reproduces manual_seed(0) randn(18): the last 16 outputs recomputed from fresh uniforms', () => {
    // torch.manual_seed(0); torch.randn(1, 3, 2, 3).flatten()
    const expected = [-1.1258398, -1.1523602, 0.56665063, 0.79350835, 0.59883946, -1.5550951, -0.34136038,
      1.8530061, 0.4680964, -0.15771244, -0.17339675, 0.18347794, 1.3893661, 1.5863342, 0.94629836, -0.84367675,
      0.9318266, 1.2590092];
    expect(Array.from(createGenerator(0).randn(18))).toEqual(f32(expected));
  });
});

describe('float32 building blocks', () => {
  it('fmaF32 rounds a·b + c once', () => {
    // a·b + c lands exactly between two float32 values in float64, and the tiny remainder decides the rounding.
    const a = Math.fround(1 + 2 ** -12);
    const c = Math.fround(-(2 ** -30));
    // exact a·a = 1 + 2^-11 + 2^-24; plus c is just below the midpoint 1 + 2^-11 + 2^-24 → rounds down.
    expect(fmaF32(a, a, c)).toBe(Math.fround(1 + 2 ** -11));
    expect(fmaF32(a, a, 0)).toBe(Math.fround(1 + 2 ** -11)); // tie to even
    expect(fmaF32(a, a, Math.fround(2 ** -40))).toBe(Math.fround(1 + 2 ** -11 + 2 ** -23));
    expect(fmaF32(3, 5, 7)).toBe(22);
  });

  it('the Cephes polynomials are float32-accurate', () => {
    for (const x of [1e-7, 0.001, 0.3, 0.5, 0.70710677, 0.9, 0.999999, 1]) {
      expect(Math.abs(cephesLogF32(Math.fround(x)) - Math.log(Math.fround(x)))).toBeLessThan(4e-7 * Math.max(1, Math.abs(Math.log(x))));
    }
    for (let k = 0; k <= 64; k++) {
      const t = Math.fround((2 * Math.PI * k) / 64);
      const [s, c] = cephesSinCosF32(t);
      expect(Math.abs(s - Math.sin(t))).toBeLessThan(3e-7);
      expect(Math.abs(c - Math.cos(t))).toBeLessThan(3e-7);
    }
  });
});

describe('seeds', () => {
  it('−1 picks a random seed and reports it; the reported seed reproduces the noise', () => {
    const g = createGenerator(-1);
    expect(g.seed).toBeGreaterThanOrEqual(0);
    expect(Array.from(createGenerator(g.seed).randn(40))).toEqual(Array.from(g.randn(40)));
  });

  it('rejects seeds outside 32 bits', () => {
    expect(() => resolveSeed(2 ** 32)).toThrow(/seed must be an integer/);
    expect(() => resolveSeed(-2)).toThrow(/seed must be an integer/);
    expect(() => resolveSeed(1.5)).toThrow(/seed must be an integer/);
  });

  it('batchLatents gives image i the noise of seed + i, and its generator continues each stream', () => {
    const { seeds, latents, generator } = batchLatents(7, 2, 32);
    expect(seeds).toEqual([7, 8]);
    const own = createGenerator(8);
    expect(Array.from(latents.subarray(32))).toEqual(Array.from(own.randn(32)));
    expect(Array.from(generator.randn(64).subarray(32))).toEqual(Array.from(own.randn(32)));
    expect(() => generator.randn(63)).toThrow(/split evenly/);
    expect(batchLatents(4294967295, 2, 16).seeds).toEqual([4294967295, 0]);
  });

  it('is a normal distribution (moments over 65536 draws)', () => {
    const x = createGenerator(123).randn(65536);
    let m = 0;
    let v = 0;
    for (const y of x) m += y;
    m /= x.length;
    for (const y of x) v += (y - m) ** 2;
    v /= x.length;
    expect(Math.abs(m)).toBeLessThan(0.02);
    expect(Math.abs(v - 1)).toBeLessThan(0.02);
  });
});
