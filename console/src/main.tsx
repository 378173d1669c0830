import '@mantine/core/styles.css';
import './theme.css';
import { MantineProvider, createTheme } from '@mantine/core';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { ApiClient } from './api/client';

// The server writes a fresh nonce into this meta tag on every page load; the component library puts
// it on the <style> tags it writes, the only styles the Content-Security-Policy allows besides our files.
const nonce = document.querySelector('meta[name="csp-nonce"]')?.getAttribute('content') ?? '';

// Darker greys than the defaults so secondary text keeps a 4.5:1 contrast.
const theme = createTheme({ primaryShade: 8 });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider theme={theme} getStyleNonce={() => nonce} defaultColorScheme="light">
      <App api={new ApiClient()} />
    </MantineProvider>
  </StrictMode>,
);
