// Picks the page from the path, checks the session, and mounts it with Element Plus in Chinese.
import { h, EP, session, loadSession, homeFor, startLive, APIError } from './lib.js';
import { LoginPage } from './login.js';
import { AgentPage } from './agent.js';
import { DivisionPage } from './division.js';
import { TicketPage } from './ticket.js';
import { SearchPage } from './search.js';
import { NotifyPage } from './notify.js';
import { CampaignsPage } from './campaigns.js';
import { CampaignBuildPage } from './campaignbuild.js';
import { CampaignRunPage } from './campaignrun.js';
import { WallboardPage } from './wallboard.js';
import { StatsPage } from './stats.js';
import { AdminPage } from './admin.js';
import { HouseholdsPage, HouseholdPage } from './households.js';
import { KBPage } from './kb.js';
import { ExchangePage } from './exchange.js';

async function boot() {
  const path = location.pathname;
  let page;
  if (path === '/login') {
    page = LoginPage;
  } else {
    try {
      await loadSession();
    } catch (e) {
      if (e instanceof APIError && e.status === 401) {
        location.replace('/login?next=' + encodeURIComponent(path + location.search));
        return;
      }
      document.getElementById('app').textContent = '无法连接服务器，请稍后刷新。';
      return;
    }
    if (path === '/') { location.replace(homeFor(session.user)); return; }
    const m = path.match(/^\/tickets\/(\d+)$/);
    const cm = path.match(/^\/campaigns\/(\d+)$/);
    const mh = path.match(/^\/households\/(\d+)$/);
    if (m) page = { setup: () => () => h(TicketPage, { id: Number(m[1]) }) };
    else if (cm) page = { setup: () => () => h(CampaignRunPage, { id: Number(cm[1]) }) };
    else if (mh) page = { setup: () => () => h(HouseholdPage, { id: Number(mh[1]) }) };
    else page = { '/agent': AgentPage, '/division': DivisionPage, '/search': SearchPage, '/notify': NotifyPage,
      '/wallboard': WallboardPage, '/stats': StatsPage, '/admin': AdminPage, '/households': HouseholdsPage, '/kb': KBPage,
      '/campaigns': CampaignsPage, '/campaigns/new': CampaignBuildPage, '/exchange': ExchangePage }[path] || SearchPage;
    startLive();
  }
  const app = Vue.createApp(page);
  app.use(EP, { locale: window.ElementPlusLocaleZhCn });
  app.config.errorHandler = (err) => { console.error('页面错误', err); };
  app.mount('#app');
}

boot();
