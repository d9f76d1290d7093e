/** `import text from './file?raw'`: the file's contents as a string (Vite and scripts/build.mjs both support it). */
declare module '*?raw' {
  const text: string;
  export default text;
}
