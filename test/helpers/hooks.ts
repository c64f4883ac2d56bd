// Root hooks: an unhandled rejection or uncaught exception fails the run instead of passing silently.
process.on('unhandledRejection', err => {
  throw err
})

export const mochaHooks = {}
