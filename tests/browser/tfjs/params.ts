// What the page of tests/tfjs-browser.test.ts computes, shared by the page and the test.
export const OPTS = { p: 0.3, seed: 1234, stream: 5, offset: 7 } as const;
export const N = 1000;
