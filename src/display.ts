/**
 * How glonet shows things to people, in the run and experiment reports (src/report) and on the
 * page of `glonet web` (web/): the display names of families, architectures and data sets, the
 * palette, the font, and the charts' common theme. It imports nothing, so the page bundles it.
 */

/** Display names of the words runs are made of ('resnetv2-nobn' -> 'ResNetv2 (no BN)'). */
const DISPLAY_NAMES: Readonly<Record<string, string>> = {
  mlp: 'MLP', resnet20: 'ResNet20', vit: 'ViT',
  glonet: 'GloNet', 'glonet-bn': 'GloNet (BN)', resnetv2: 'ResNetv2', 'resnetv2-nobn': 'ResNetv2 (no BN)',
  vanilla: 'Vanilla', 'vanilla-nobn': 'Vanilla (no BN)', plain: 'plain ViT',
  sgemm: 'SGEMM', mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST', cifar10: 'CIFAR-10', csv: 'CSV',
};

/** A family's, architecture's or data set's name for people; other words come back as they are. */
export function displayName(word: string): string {
  return DISPLAY_NAMES[word] ?? word;
}

/** The palette of every chart and page. */
export const COLORS = {
  blue: '#2563eb',
  orange: '#ea580c',
  green: '#15803d',
  purple: '#7c3aed',
  gray: '#64748b',
  red: '#dc2626',
  ink: '#1e293b',
  band: '#93c5fd',
} as const;

/** The font stack of every page. */
export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';

/** The Vega-Lite configuration both the reports and the page start from (each adds its own sizes). */
export const CHART_THEME = {
  font: FONT,
  background: 'white',
  view: { stroke: null },
  axis: {
    labelColor: '#475569', labelFontSize: 11, titleColor: COLORS.ink, titleFontSize: 12,
    titleFontWeight: 600, gridColor: '#e8edf3', domainColor: '#94a3b8', tickColor: '#94a3b8',
  },
  legend: { labelColor: '#334155', labelFontSize: 12, orient: 'top' },
  line: { strokeWidth: 2 },
} as const;
