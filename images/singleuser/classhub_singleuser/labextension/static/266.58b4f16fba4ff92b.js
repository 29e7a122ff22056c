"use strict";(self.rspackChunk_classhub_jupyterlab_classhub=self.rspackChunk_classhub_jupyterlab_classhub||[]).push([[266],{646(e,r,a){var t=a(601),n=a.n(t),o=a(314),s=(a.n(o))()(n());s.push([e.id,`/* classhub's JupyterLab extension: the Class panel, the top bar, the session dialog */
.classhub-panel {
  overflow: auto;
  padding: 8px 12px;
  background: var(--jp-layout-color1);
  color: var(--jp-ui-font-color1);
  font-size: var(--jp-ui-font-size1);
}

.classhub-panel h2 {
  margin: 4px 0;
  font-size: var(--jp-ui-font-size3);
}

.classhub-panel h3 {
  margin: 12px 0 4px;
  font-size: var(--jp-ui-font-size2);
}

.classhub-panel h4 {
  margin: 0 0 4px;
}

.classhub-who,
.classhub-when,
.classhub-due,
.classhub-state {
  color: var(--jp-ui-font-color2);
  margin: 2px 0;
}

.classhub-assignment {
  border: 1px solid var(--jp-border-color2);
  border-radius: 4px;
  padding: 8px;
  margin: 6px 0;
}

.classhub-link {
  background: none;
  border: none;
  padding: 0;
  color: var(--jp-content-link-color);
  cursor: pointer;
  text-align: left;
}

.classhub-submit {
  margin: 6px 0;
}

.classhub-result[data-kind="error"],
.classhub-message[data-kind="error"] {
  color: var(--jp-error-color1);
}

.classhub-result[data-kind="success"] {
  color: var(--jp-success-color1);
}

.classhub-taken {
  margin: 2px 0;
  padding-left: 18px;
  color: var(--jp-ui-font-color1);
}

.classhub-feedback {
  border-top: 1px solid var(--jp-border-color2);
  margin-top: 6px;
}

.classhub-material {
  list-style: none;
  padding: 0;
}

.classhub-material li {
  margin: 4px 0;
}

.classhub-badge {
  background: var(--jp-brand-color1);
  color: white;
  border-radius: 8px;
  padding: 0 6px;
  margin-left: 6px;
}

.classhub-note,
.classhub-when {
  display: block;
  font-size: var(--jp-ui-font-size0);
}

.classhub-top-bar {
  display: flex;
  gap: 12px;
  align-items: center;
  padding: 0 12px;
  min-height: 24px;
  font-size: var(--jp-ui-font-size1);
  color: var(--jp-ui-font-color1);
}

.classhub-top-class {
  font-weight: bold;
}

.classhub-not-yours {
  background: var(--jp-warn-color2);
}

.classhub-ended-bar {
  min-height: 24px;
  padding: 2px 12px;
  background: var(--jp-error-color1);
  color: white;
  font-weight: bold;
}

.classhub-ended {
  max-width: 520px;
}
`,""]),a.d(r,{},{A:s})},314(e){e.exports=function(e){var r=[];return r.toString=function(){return this.map(function(r){var a="",t=void 0!==r[5];return r[4]&&(a+="@supports (".concat(r[4],") {")),r[2]&&(a+="@media ".concat(r[2]," {")),t&&(a+="@layer".concat(r[5].length>0?" ".concat(r[5]):""," {")),a+=e(r),t&&(a+="}"),r[2]&&(a+="}"),r[4]&&(a+="}"),a}).join("")},r.i=function(e,a,t,n,o){"string"==typeof e&&(e=[[null,e,void 0]]);var s={};if(t)for(var c=0;c<this.length;c++){var i=this[c][0];null!=i&&(s[i]=!0)}for(var l=0;l<e.length;l++){var u=[].concat(e[l]);t&&s[u[0]]||(void 0!==o&&(void 0===u[5]||(u[1]="@layer".concat(u[5].length>0?" ".concat(u[5]):""," {").concat(u[1],"}")),u[5]=o),a&&(u[2]&&(u[1]="@media ".concat(u[2]," {").concat(u[1],"}")),u[2]=a),n&&(u[4]?(u[1]="@supports (".concat(u[4],") {").concat(u[1],"}"),u[4]=n):u[4]="".concat(n)),r.push(u))}},r}},601(e){e.exports=function(e){return e[1]}},665(e,r,a){a.r(r);var t=a(72),n=a.n(t),o=a(825),s=a.n(o),c=a(659),i=a.n(c),l=a(56),u=a.n(l),p=a(540),d=a.n(p),h=a(113),f=a.n(h),b=a(646),v={};v.styleTagTransform=f(),v.setAttributes=u(),v.insert=i().bind(null,"head"),v.domAPI=s(),v.insertStyleElement=d(),n()(b.A,v);let m=b.A&&b.A.locals?b.A.locals:void 0;a.d(r,{},{default:m})},72(e){var r=[];function a(e){for(var a=-1,t=0;t<r.length;t++)if(r[t].identifier===e){a=t;break}return a}function t(e,t){for(var n={},o=[],s=0;s<e.length;s++){var c=e[s],i=t.base?c[0]+t.base:c[0],l=n[i]||0,u="".concat(i," ").concat(l);n[i]=l+1;var p=a(u),d={css:c[1],media:c[2],sourceMap:c[3],supports:c[4],layer:c[5]};if(-1!==p)r[p].references++,r[p].updater(d);else{var h=function(e,r){var a=r.domAPI(r);return a.update(e),function(r){r?(r.css!==e.css||r.media!==e.media||r.sourceMap!==e.sourceMap||r.supports!==e.supports||r.layer!==e.layer)&&a.update(e=r):a.remove()}}(d,t);t.byIndex=s,r.splice(s,0,{identifier:u,updater:h,references:1})}o.push(u)}return o}e.exports=function(e,n){var o=t(e=e||[],n=n||{});return function(e){e=e||[];for(var s=0;s<o.length;s++){var c=a(o[s]);r[c].references--}for(var i=t(e,n),l=0;l<o.length;l++){var u=a(o[l]);0===r[u].references&&(r[u].updater(),r.splice(u,1))}o=i}}},659(e){var r={};e.exports=function(e,a){var t=function(e){if(void 0===r[e]){var a=document.querySelector(e);if(window.HTMLIFrameElement&&a instanceof window.HTMLIFrameElement)try{a=a.contentDocument.head}catch(e){a=null}r[e]=a}return r[e]}(e);if(!t)throw Error("Couldn't find a style target. This probably means that the value for the 'insert' parameter is invalid.");t.appendChild(a)}},540(e){e.exports=function(e){var r=document.createElement("style");return e.setAttributes(r,e.attributes),e.insert(r,e.options),r}},56(e,r,a){e.exports=function(e){var r=a.nc;r&&e.setAttribute("nonce",r)}},825(e){e.exports=function(e){if("u"<typeof document)return{update:function(){},remove:function(){}};var r=e.insertStyleElement(e);return{update:function(a){var t,n,o;t="",a.supports&&(t+="@supports (".concat(a.supports,") {")),a.media&&(t+="@media ".concat(a.media," {")),(n=void 0!==a.layer)&&(t+="@layer".concat(a.layer.length>0?" ".concat(a.layer):""," {")),t+=a.css,n&&(t+="}"),a.media&&(t+="}"),a.supports&&(t+="}"),(o=a.sourceMap)&&"u">typeof btoa&&(t+="\n/*# sourceMappingURL=data:application/json;base64,".concat(btoa(unescape(encodeURIComponent(JSON.stringify(o))))," */")),e.styleTagTransform(t,r,e.options)},remove:function(){var e;null===(e=r).parentNode||e.parentNode.removeChild(e)}}}},113(e){e.exports=function(e,r){if(r.styleSheet)r.styleSheet.cssText=e;else{for(;r.firstChild;)r.removeChild(r.firstChild);r.appendChild(document.createTextNode(e))}}}}]);